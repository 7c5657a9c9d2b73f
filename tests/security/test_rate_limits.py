"""Rate limits: a flooding WhatsApp sender, a client hammering the guest book or the QR page."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain.errors import TransientError
from sapa.ratelimit import SharedLimiter
from sapa.services import intake
from tests.conftest import RecordingQueue, make_container
from tests.functions.conftest import (
    OTHER_WA_ID,
    WA_ID,
    FakeWhatsApp,
    Flow,
    blob_files,
    tiny_png,
)
from tests.services.conftest import Runner, inbound

LIMIT = 10
NOTICE = "Terlalu banyak pesan"


def _limits(c: Container, **values: int) -> None:
    c.settings = c.settings.model_copy(update=values)  # type: ignore[misc]


def _texts_to(wa: FakeWhatsApp, wa_id: str) -> list[str]:
    return [s.body for s in wa.sent if s.to == wa_id]


# ---- WhatsApp: one sender flooding -----------------------------------------------------------


def test_a_flood_gets_one_notice_and_does_not_hold_up_another_resident(
    container: Container, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    # GIVEN the default limit of 10 messages a minute per sender
    assert container.settings.wa_sender_rate_per_minute == LIMIT
    runner = Runner(container)
    # WHEN one number sends 40 "STATUS" in a minute while another resident greets and asks
    for n in range(40):
        intake.receive(container, [inbound("STATUS", wamid=f"wamid.F{n}")], [])
        if n == 20:
            intake.receive(container, [inbound("Halo", wa_id=OTHER_WA_ID, wamid="wamid.B1")], [])
        if n == 25:
            intake.receive(container, [inbound("STATUS", wa_id=OTHER_WA_ID, wamid="wamid.B2")], [])
        clock.advance(1)
    runner.drain()
    # THEN the flood got at most limit + 1 replies (plus the guest-book link that answers the
    # very first message besides its status), exactly one of them the notice ...
    flood = _texts_to(wa, WA_ID)
    assert "/guestbook/f/" in flood[0]
    assert len(flood) <= 1 + LIMIT + 1
    assert sum(NOTICE in b for b in flood) == 1
    assert NOTICE in flood[-1]
    # ... every message it sent is kept on its case for staff ...
    case = container.store.find_open("730608", WA_ID)
    assert case is not None
    inbound_ids = [m.id for m in container.store.messages(case.id) if m.direction == "in"]
    assert len(inbound_ids) == 40
    # ... and the other resident got the guest-book link and the status answer
    other = _texts_to(wa, OTHER_WA_ID)
    assert any("/guestbook/f/" in b for b in other)
    assert any(b.startswith("Permohonan ") and "Sedang ditangani" in b for b in other)


def test_replies_resume_when_the_minute_is_over(
    container: Container, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    runner = Runner(container)
    for n in range(LIMIT + 5):
        intake.receive(container, [inbound("STATUS", wamid=f"wamid.F{n}")], [])
    runner.drain()
    before = len(_texts_to(wa, WA_ID))
    clock.advance(61)
    intake.receive(container, [inbound("STATUS", wamid="wamid.later")], [])
    runner.drain()
    after = _texts_to(wa, WA_ID)
    assert len(after) == before + 1 and "Sedang ditangani" in after[-1]


def test_media_of_a_flood_is_still_copied(container: Container, wa: FakeWhatsApp) -> None:
    for n in range(LIMIT + 3):
        intake.receive(container, [inbound("Halo", wamid=f"wamid.T{n}")], [])
    queue = container.queue
    assert isinstance(queue, RecordingQueue)
    queue.take()
    photo = inbound("KK", wamid="wamid.photo", type_="image", media_id="media-1")
    intake.receive(container, [photo], [])
    assert [t.kind for t in queue.take()] == ["media_store"]


def test_duplicates_from_meta_do_not_count(container: Container, wa: FakeWhatsApp) -> None:
    runner = Runner(container)
    for _ in range(3 * LIMIT):
        intake.receive(container, [inbound("STATUS", wamid="wamid.same")], [])
    runner.drain()
    assert not any(NOTICE in b for b in _texts_to(wa, WA_ID))


def test_the_flood_limit_through_the_webhook(
    container: Container, post_webhook: Callable[..., Any], queue: RecordingQueue
) -> None:
    from tests.functions.conftest import change, text_message, webhook_body

    _limits(container, wa_sender_rate_per_minute=3)
    messages = [text_message(f"wamid.W{n}", "STATUS") for n in range(8)]
    resp = post_webhook(webhook_body(change(messages)))
    assert resp.status_code == 200 and resp.get_json()["routed"] == 8
    kinds = [t.payload.get("kind") for t in queue.take() if t.kind == "notify"]
    assert kinds.count("status") == 3  # the first three messages are answered
    assert kinds.count("rate_limited") == 1


# ---- the shared counter -----------------------------------------------------------------------


def test_instances_count_together_on_one_store(tmp_path: Any) -> None:
    # two containers on one data directory = two instances sharing one SQLite database
    one, two = make_container(tmp_path / "var"), make_container(tmp_path / "var")
    assert one.store is not two.store
    a = SharedLimiter(one.store, "t", 4)
    b = SharedLimiter(two.store, "t", 4)
    now = FixedClock().now()
    verdicts = [(a if n % 2 else b).hit("6281234567890", now) for n in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 4 + [False] * 3
    assert [v.first_refusal for v in verdicts].count(True) == 1
    # the store holds no phone number, only a digest of it
    with sqlite3.connect(next((tmp_path / "var").glob("*.db"))) as db:
        scopes = [r[0] for r in db.execute("SELECT scope FROM sequences WHERE scope LIKE 'rl:%'")]
    assert scopes and not any("6281234567890" in s for s in scopes)


def test_an_instance_over_the_limit_stops_writing(tmp_path: Any) -> None:
    class Counting:
        def __init__(self) -> None:
            self.n = 0

        def next_sequence(self, scope: str, *, expires_at: Any = None) -> int:
            self.n += 1
            return self.n

    store = Counting()
    limiter = SharedLimiter(store, "t", 3)
    now = FixedClock().now()
    for _ in range(100):
        limiter.hit("x", now)
    assert store.n == 4


def test_a_counter_outage_lets_residents_through() -> None:
    class Down:
        def next_sequence(self, scope: str, *, expires_at: Any = None) -> int:
            raise TransientError("store down")

    assert SharedLimiter(Down(), "t", 1).hit("x", FixedClock().now()).allowed


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SharedLimiter(object(), "t", 0)  # type: ignore[arg-type]


# ---- guest book and verification page: per client address -----------------------------------


def test_guest_book_answers_429_in_indonesian_and_changes_nothing(
    container: Container, flow: Flow, client_for: Callable[[str], FlaskClient]
) -> None:
    case = flow.to("link_sent")
    token = flow.token(case)
    _limits(container, guestbook_rate_per_minute=3)
    client = client_for("guestbook")
    me = {"REMOTE_ADDR": "10.1.1.1"}
    for _ in range(3):
        assert client.get(f"/f/{token}", environ_base=me).status_code == 200
    page = client.get(f"/f/{token}", environ_base=me)
    assert page.status_code == 429
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    assert "Terlalu banyak permintaan" in page.get_data(as_text=True)
    # an upload refused by the limit stores nothing and answers in JSON for the page's script
    before = container.store.get(case.id)
    files_before = blob_files(container)
    upload = client.post(
        f"/f/{token}/doc/kk",
        data={"file": (io.BytesIO(tiny_png()), "kk.png")},
        environ_base=me,
    )
    assert upload.status_code == 429 and upload.get_json()["error"] == "rate_limited"
    assert "detik" in upload.get_json()["message"]
    assert container.store.get(case.id).documents == before.documents
    assert blob_files(container) == files_before
    # another resident (another address) is served
    assert client.get(f"/f/{token}", environ_base={"REMOTE_ADDR": "10.1.1.2"}).status_code == 200


def test_wrong_tokens_count_too(
    container: Container, client_for: Callable[[str], FlaskClient]
) -> None:
    _limits(container, guestbook_rate_per_minute=5)
    client = client_for("guestbook")
    codes = [client.get(f"/f/guess-{n}").status_code for n in range(8)]
    assert codes[:5] == [410] * 5 and codes[5:] == [429] * 3


def test_verification_page_429_as_json(
    container: Container, client_for: Callable[[str], FlaskClient]
) -> None:
    _limits(container, verify_rate_per_minute=2)
    client = client_for("verify")
    json_accept = {"Accept": "application/json"}
    assert [client.get("/d/x", headers=json_accept).status_code for _ in range(2)] == [404, 404]
    refused = client.get("/d/x", headers=json_accept)
    assert refused.status_code == 429 and refused.get_json()["error"] == "rate_limited"
    assert refused.headers["Retry-After"].isdigit()


def test_the_limiter_cache_does_not_keep_a_store_alive(tmp_path: Any) -> None:
    import gc
    import weakref

    from sapa.ratelimit import shared_limiter

    c = make_container(tmp_path / "var")
    store = c.store
    shared_limiter(store, "t", 3).hit("x", FixedClock().now())
    ref = weakref.ref(store)
    del store, c
    gc.collect()
    assert ref() is None  # the database it holds open is closed with it


@pytest.mark.parametrize(
    ("header", "hops", "client"),
    [
        ("", 1, "192.0.2.9"),  # no proxy: the socket's peer
        ("198.51.100.7", 1, "198.51.100.7"),  # the platform's front end added the client
        ("203.0.113.66, 198.51.100.7", 1, "198.51.100.7"),  # a forged first entry is ignored
        # behind the HTTPS load balancer: "<client>,<load balancer>" appended
        ("198.51.100.7, 34.111.0.1", 2, "198.51.100.7"),
        ("203.0.113.66, 198.51.100.7, 34.111.0.1", 2, "198.51.100.7"),
        # a shorter header than the proxies that should have written it: its first entry
        ("198.51.100.7", 2, "198.51.100.7"),
    ],
)
def test_the_client_address_is_counted_from_the_trusted_end(
    header: str, hops: int, client: str
) -> None:
    from sapa.ratelimit import client_address

    assert client_address(header, "192.0.2.9", hops) == client


def test_two_residents_behind_the_load_balancer_are_counted_apart(
    container: Container,
) -> None:
    from sapa.ratelimit import client_address, shared_limiter

    limiter = shared_limiter(container.store, "guestbook", 2)
    now = container.clock.now()
    a = client_address("198.51.100.7, 34.111.0.1", None, 2)
    b = client_address("198.51.100.8, 34.111.0.1", None, 2)
    assert [limiter.hit(a, now).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit(b, now).allowed  # not the load balancer's address shared by all


def test_the_counters_hash_numbers_with_a_key(container: Container) -> None:
    import hashlib

    from sapa.ratelimit import limiter_secret

    number = "6281234567890"
    plain = hashlib.sha256(number.encode()).hexdigest()[:16]
    secret = limiter_secret(container.settings.secret("session_secret"))
    keyed = SharedLimiter(container.store, "t", 4, secret=secret)
    other = SharedLimiter(container.store, "t", 4, secret=limiter_secret("another secret"))
    # a plain hash of a mobile number is found by trying them all; the keyed one is not
    assert plain not in keyed.scope(number, 1)
    assert keyed.digest(number) != other.digest(number)
    assert keyed.digest(number) == keyed.digest(number)
