"""A resident's media through the simulator's Graph API: download and keep, an expired media
id, and a download that does not match the sha256 Meta announced (retried, then given up)."""

from __future__ import annotations

import hashlib

from sapa.domain.texts import text
from tests.functions.conftest import tiny_pdf, tiny_png
from tests.whatsapp.conftest import (
    MAX_ATTEMPTS,
    PNID,
    WA_ID,
    Rig,
    b64_sha256,
    change,
    contact,
    envelope,
)


def _image_webhook(rig: Rig, media_id: str, sha256: str, wamid: str = "wamid.IMG") -> None:
    m = rig.message(
        "image",
        {"id": media_id, "mime_type": "image/png", "sha256": sha256, "caption": "foto KK"},
        wamid=wamid,
    )
    resp = rig.webhook(envelope(change(PNID, [m], contacts=[contact(WA_ID)])))
    assert resp.status_code == 200, resp.text


def test_a_photo_sent_in_the_simulator_is_downloaded_and_attached(rig: Rig) -> None:
    # GIVEN a resident whose link went out
    case = rig.greet()
    png = tiny_png()
    # WHEN he sends a photo and a PDF from the simulator's chat (its own upload and webhook)
    photo = rig.sim_send(text="foto KK", file={"file": ("kk.png", png, "image/png")})
    pdf = tiny_pdf()
    document = rig.sim_send(file={"file": ("akta.pdf", pdf, "application/pdf")})
    assert photo["webhook_status"] == document["webhook_status"] == 200
    deliveries = rig.drain()
    # THEN both media_store tasks stored the bytes in the BlobStore, attached to the case
    stores = [d for d in deliveries if d.kind == "media_store"]
    assert [d.body["result"] for d in stores] == ["stored", "stored"]
    docs = {d.content_type: d for d in rig.c.store.get(case.id).documents}
    assert set(docs) == {"image/png", "application/pdf"}
    # the photo re-encoded like a guest-book upload (no metadata kept), the PDF as it came
    stored_png = rig.c.blobs.get(docs["image/png"].key)
    assert docs["image/png"].sha256 == hashlib.sha256(stored_png).hexdigest()
    assert _pixels(stored_png) == _pixels(png)
    assert docs["application/pdf"].sha256 == hashlib.sha256(pdf).hexdigest()
    assert rig.c.blobs.get(docs["application/pdf"].key) == pdf
    assert all(d.source == "whatsapp" for d in docs.values())
    assert docs["application/pdf"].filename == "akta.pdf"
    assert len(rig.events(case.id, "media_stored")) == 2
    # AND the messages on the case point at the simulator's media ids
    inbound = {m.id: m for m in rig.messages(case.id, "in")}
    assert inbound[photo["wamid"]].body == "foto KK"
    assert inbound[photo["wamid"]].data["media_id"]
    # AND a delivery of the same task again keeps one copy
    again = rig.post_task(stores[0].kind, stores[0].payload, stores[0].name)
    assert again.json()["result"] == "stored"
    assert len(rig.c.store.get(case.id).documents) == 2


def _pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as img:
        return img.size, img.convert("RGB").tobytes()


def test_a_webhook_sha256_in_base64_is_accepted(rig: Rig) -> None:
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    _image_webhook(rig, media_id, b64_sha256(png))
    assert [d.body["result"] for d in rig.drain() if d.kind == "media_store"] == ["stored"]
    (stored,) = rig.c.store.get(case.id).documents
    assert [stored.sha256] == [hashlib.sha256(rig.c.blobs.get(stored.key)).hexdigest()]


def test_an_expired_media_id_is_dropped_for_good_and_recorded(rig: Rig) -> None:
    # GIVEN a resident whose photo's media id no longer exists at Meta (deleted: expired)
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    gone = rig.http.delete(
        f"{rig.c.settings.wa_base}/{media_id}",
        headers={"Authorization": f"Bearer {rig.c.settings.secret('wa_token')}"},
        timeout=10,
    )
    assert gone.status_code == 200
    _image_webhook(rig, media_id, hashlib.sha256(png).hexdigest())
    # WHEN the media_store task runs
    deliveries = [d for d in rig.drain() if d.kind == "media_store"]
    # THEN it ran once: answered 200 (Cloud Tasks must not retry a 4xx from Meta) as dropped
    assert len(deliveries) == 1
    assert deliveries[0].status == 200
    assert deliveries[0].body["status"] == "permanent_error"
    assert rig.queue.stats().pending == 0
    assert rig.queue.dead_letters() == []
    # AND nothing is attached, the failure is on the case, and the resident is asked to resend
    assert rig.c.store.get(case.id).documents == []
    (failed,) = rig.events(case.id, "media_failed")
    assert failed.detail["wamid"] == "wamid.IMG"
    assert text("wa_media_failed") in [m["text"] for m in rig.received()]


def test_an_unknown_media_id_is_dropped_the_same_way(rig: Rig) -> None:
    case = rig.greet()
    _image_webhook(rig, "1234567890123456", "0" * 64)
    deliveries = [d for d in rig.drain() if d.kind == "media_store"]
    assert [d.body["status"] for d in deliveries] == ["permanent_error"]
    assert len(rig.events(case.id, "media_failed")) == 1


def test_a_sha256_mismatch_is_retried_and_the_last_attempt_gives_up(rig: Rig) -> None:
    # GIVEN a photo on the simulator whose webhook announces the sha256 of other bytes
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    _image_webhook(rig, media_id, hashlib.sha256(b"other bytes").hexdigest())
    (task,) = rig.queue.lease(10, 60.0)  # held by this test: the worker will not run it
    assert task.kind == "media_store"
    before = rig.snapshot(case.id)
    # WHEN Cloud Tasks delivers it on every attempt but the last
    for retry in range(MAX_ATTEMPTS - 1):
        resp = rig.post_task(task.kind, task.payload, task.name, retry=retry)
        # THEN it is a transient failure (503: retry), and nothing is recorded yet
        assert resp.status_code == 503, resp.text
        assert "sha256" in resp.json()["message"]
        assert rig.snapshot(case.id) == before
    # WHEN the last attempt fails the same way
    last = rig.post_task(task.kind, task.payload, task.name, retry=MAX_ATTEMPTS - 1)
    # THEN it is still a 503 (the queue dead-letters it) and the give-up told staff and resident
    assert last.status_code == 503
    (failed,) = rig.events(case.id, "media_failed")
    assert failed.detail["wamid"] == "wamid.IMG"
    assert "sha256" in failed.detail["reason"]
    assert rig.c.store.get(case.id).documents == []
    rig.queue.complete(task.id)
    rig.drain()
    replies = [m["text"] for m in rig.received()]
    assert replies.count(text("wa_media_failed")) == 1


def test_the_queue_itself_retries_a_sha256_mismatch_until_it_gives_up(rig: Rig) -> None:
    # GIVEN a photo whose announced sha256 does not match its bytes
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    _image_webhook(rig, media_id, hashlib.sha256(b"other bytes").hexdigest())
    # WHEN the durable queue delivers it (with its own backoff and retry counts)
    deliveries = [d for d in rig.drain() if d.kind == "media_store"]
    # THEN it was attempted max_attempts times, answered 503 each time, then dead-lettered
    assert [d.retry for d in deliveries] == list(range(MAX_ATTEMPTS))
    assert {d.status for d in deliveries} == {503}
    (dead,) = rig.queue.dead_letters()
    assert dead.kind == "media_store"
    # AND the give-up ran once (on the last attempt): one note, one message to the resident
    assert len(rig.events(case.id, "media_failed")) == 1
    assert [m["text"] for m in rig.received()].count(text("wa_media_failed")) == 1
    assert rig.c.store.get(case.id).documents == []


def test_a_download_that_fails_once_is_stored_on_the_retry(rig: Rig) -> None:
    # GIVEN a photo, and the Graph API failing the next call with a 500
    case = rig.greet()
    png = tiny_png()
    media_id = rig.upload(png, "image/png")
    _image_webhook(rig, media_id, hashlib.sha256(png).hexdigest())
    rig.faults(500, 1)
    # WHEN the queue runs the task
    deliveries = [d for d in rig.drain() if d.kind == "media_store"]
    # THEN the first attempt is retried and the second stores the photo
    assert [d.status for d in deliveries] == [503, 200]
    assert deliveries[1].body["result"] == "stored"
    assert len(rig.c.store.get(case.id).documents) == 1
    assert rig.events(case.id, "media_failed") == []
