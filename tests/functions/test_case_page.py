"""staff: the case page as each officer sees it, through the staff function (HTML and JSON):
people by name, the audit trail in Bahasa Indonesia, an officer's reply on its way, and what
SAPA does in the background (a signature, the SIAK hand-off package) shown until it is done."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain.texts import AUDIT_EVENT_LABELS, STATE_LABELS
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import (
    NIK,
    TS,
    WA_ID,
    Flow,
    Officer,
    change,
    deliver_task,
    webhook_body,
)

LOKET = "loket.sombaopu@sapa.test"
KABID = "kabid@sapa.test"
KADIS = "kadis@sapa.test"
ADMIN = "admin@sapa.test"
OPERATOR = "operator.siak@sapa.test"


def visible_text(page: str) -> str:
    """What a reader sees of a page: no tags, no attributes, no style or script blocks."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def section(page: str, heading: str) -> str:
    """The part of the page from the heading `heading` to the next h2."""
    start = page.index(f">{heading}</h2>")
    end = page.find("<h2", start)
    return page[start : end if end > 0 else len(page)]


def test_the_audit_trail_names_every_event_and_state_in_indonesian(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case taken through every step to the signature
    case = flow.sign(flow.to("approved"))
    events = container.store.events(case.id)
    assert {"greet", "send_link", "submit_form", "check", "sign"} <= {e.event for e in events}

    # WHEN the head of office opens it
    kadis = login(KADIS)
    body = kadis.case(case.id)
    page = kadis.get(f"/cases/{case.id}", json=False).get_data(as_text=True)

    # THEN every event of the trail is shown by its Indonesian label, with its states'
    trail = visible_text(section(page, "Jejak audit"))
    for e in events:
        assert AUDIT_EVENT_LABELS[e.event] in trail, e.event
        assert STATE_LABELS[e.to_state] in trail
    # AND no internal code is left: not the events', the states' or the system's
    codes = {e.event for e in events} | {e.to_state for e in events} | {"system"}
    words = set(re.findall(r"[a-z_]+", trail))
    assert not codes & words, codes & words
    # AND the JSON keeps the codes beside the labels (what scripts and the driver read)
    assert [e["event"] for e in body["events"]] == [e.event for e in events]
    labelled = {e["event"]: e["event_label"] for e in body["events"]}
    assert labelled["submit_form"] == "Buku Tamu dikirim pemohon"


def test_officers_are_named_with_their_e_mail_on_hover(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case the counter officer has claimed and checked, and one he holds again
    case = flow.to("form_submitted")
    flow.act(case, LOKET, "claim")
    flow.act(case, LOKET, "check")
    flow.act(case, LOKET, "claim")

    # WHEN the head of division opens it
    page = login(KABID).get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    text = visible_text(page)

    # THEN the officer is named in the status, the timeline and the audit trail, the e-mail
    # only in a title (shown on hover), never as the text
    named = f'<span title="{LOKET}">Petugas Loket Somba Opu</span>'
    assert "ditangani " + named in page
    assert named in section(page, "Linimasa terhadap mutu baku")
    assert named in section(page, "Jejak audit")
    assert "@sapa.test" not in text
    # AND SAPA's own moves and the resident's are named as such, not as codes
    trail = visible_text(section(page, "Jejak audit"))
    assert "Sistem SAPA" in trail and "Pemohon" in trail


# ---- an officer's reply on its way to the resident ---------------------------------------------


def reply_entries(officer: Officer, case_id: str, body: str) -> list[dict[str, Any]]:
    return [m for m in officer.case(case_id)["messages"] if m["body"] == body]


def status_webhook(wamid: str, status: str) -> dict[str, Any]:
    return webhook_body(
        change(
            [],
            statuses=[{"id": wamid, "status": status, "timestamp": TS, "recipient_id": WA_ID}],
            contacts=[],
        )
    )


def test_a_reply_shows_mengirim_until_whatsapp_says_sent_then_delivered_and_read(
    container: Container,
    login: Callable[[str], Officer],
    flow: Flow,
    queue: RecordingQueue,
    wa: FakeWhatsApp,
    run_task: Callable[..., Any],
    post_webhook: Callable[..., Any],
) -> None:
    # GIVEN a submitted case the counter officer is looking at
    case = flow.to("form_submitted")
    loket = login(LOKET)
    text = "Selamat siang Pak Andi, foto KK sudah kami terima."
    # WHEN he sends a reply (the queue has not run it yet)
    assert loket.act(case, "reply", json=False, message=text).status_code == 303
    # THEN the conversation shows it at once, his, on its way: "mengirim…"
    (entry,) = reply_entries(loket, case.id, text)
    assert (entry["who"], entry["who_title"], entry["author"]) == (
        "Petugas Loket Somba Opu",
        LOKET,
        "officer",
    )
    assert (entry["status"], entry["status_label"]) == ("pending", "mengirim…")
    page = visible_text(loket.get(f"/cases/{case.id}", json=False).get_data(as_text=True))
    assert "mengirim…" in page

    # WHEN the queue sends it: WhatsApp took it but has not said it is sent
    (task,) = queue.take()
    assert deliver_task(run_task, task).status_code == 200
    wamid = wa.sent[-1].wamid
    # THEN it is still one entry, still on its way
    (entry,) = reply_entries(loket, case.id, text)
    assert entry["status"] == "pending"

    # WHEN WhatsApp reports sent, delivered, read: THEN the one entry says so, in Indonesian
    for status, label in (("sent", "terkirim"), ("delivered", "diterima"), ("read", "dibaca")):
        assert post_webhook(status_webhook(wamid, status)).status_code == 200
        (entry,) = reply_entries(loket, case.id, text)
        assert (entry["status"], entry["status_label"]) == (status, label)
    # AND the automatic messages are SAPA's, not his
    automatic = [m for m in loket.case(case.id)["messages"] if m["author"] == "automatic"]
    assert automatic and all(m["who"] == "SAPA (otomatis)" for m in automatic)
    assert all(m["who"] != "SAPA" for m in loket.case(case.id)["messages"])


def test_a_reply_whatsapp_would_not_take_says_not_sent_and_why(
    container: Container,
    login: Callable[[str], Officer],
    flow: Flow,
    queue: RecordingQueue,
    run_task: Callable[..., Any],
    clock: FixedClock,
) -> None:
    # GIVEN a case whose resident last wrote more than 24 hours ago
    case = flow.to("form_submitted")
    clock.advance(25 * 3600)
    loket = login(LOKET)
    text = "Mohon kirim ulang foto KK."
    # WHEN the counter officer replies and the queue tries to send it
    assert loket.act(case, "reply", message=text).status_code == 200
    (task,) = queue.take()
    assert deliver_task(run_task, task).status_code == 200
    # THEN the reply is shown once, not sent, with the reason in words
    (entry,) = reply_entries(loket, case.id, text)
    assert entry["status"] == "not_sent"
    assert entry["status_label"] == "tidak terkirim"
    assert "24 jam" in entry["status_reason"]


# ---- what runs in the background, shown and watched until done ---------------------------------


def test_signing_shows_as_running_until_the_signed_document_is_back(
    container: Container,
    login: Callable[[str], Officer],
    flow: Flow,
    queue: RecordingQueue,
    run_task: Callable[..., Any],
) -> None:
    # GIVEN an approved case the head of office looks at: the SIAK draft in the viewer
    case = flow.to("approved")
    kadis = login(KADIS)
    before = kadis.case(case.id)
    assert before["running"] == [] and before["actions"][0]["event"] == "sign"
    # WHEN he asks for the signature (the signer has not answered yet)
    assert kadis.act(case, "sign", json=False).status_code == 303
    # THEN the page says it is being signed, offers nothing to press meanwhile (no second
    # signature, no return or rejection while the signer works), and says so without the
    # "nothing for your role" line
    page = kadis.case(case.id)
    assert [r["what"] for r in page["running"]] == ["sign"]
    assert page["actions"] == [] and page["signed"] is None
    html = kadis.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert "sedang ditandatangani" in visible_text(html)
    assert "Tidak ada tindakan untuk peran Anda" not in html
    # AND a browser without JavaScript reloads itself; with it, a nonce'd script watches
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert f'data-progress="/cases/{case.id}/progress"' in html
    # AND the progress says the same, with a stamp
    running = kadis.get(f"/cases/{case.id}/progress").get_json()
    assert running["running"] == ["sign"] and running["state"] == "approved"

    # WHEN the signer is done (the queue runs the signature task)
    (task,) = [t for t in queue.take() if t.kind == "esign_request"]
    assert deliver_task(run_task, task).status_code == 200
    # THEN the progress has moved on: nothing runs, the stamp changed
    done = kadis.get(f"/cases/{case.id}/progress").get_json()
    assert done["running"] == [] and done["state"] == "signed"
    assert done["stamp"] != running["stamp"]
    # AND the page shows the signed document and its verification page, and no more spinner
    page = kadis.case(case.id)
    assert page["running"] == [] and page["signed"]["verify_url"]
    html = kadis.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert "Buka dokumen bertanda tangan (PDF)" in html
    assert "noscript" not in html


def test_the_hand_off_package_shows_as_being_prepared_until_it_is_ready(
    container: Container,
    login: Callable[[str], Officer],
    flow: Flow,
    queue: RecordingQueue,
    run_task: Callable[..., Any],
) -> None:
    # GIVEN a case the file verifier has just forwarded (the package task not yet run)
    case = flow.to("contacted")
    verifier = login("verifikasi@sapa.test")
    assert verifier.act(case, "forward").status_code == 200
    operator = login(OPERATOR)
    # THEN the SIAK operator sees the package being prepared, not yet its link
    page = operator.case(case.id)
    assert [r["what"] for r in page["running"]] == ["handoff"]
    assert page["handoff"] is False
    # WHEN the task has built it
    for task in queue.take():
        assert deliver_task(run_task, task).status_code == 200
    # THEN the page offers the download and nothing runs any more
    page = operator.case(case.id)
    assert page["running"] == [] and page["handoff"] is True
    html = operator.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    assert "Unduh paket serah terima SIAK" in html


def test_the_progress_holds_no_personal_data_is_not_a_read_and_is_guarded_like_the_case(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a Somba Opu case
    case = flow.to("form_submitted")
    loket = login(LOKET)

    def reads() -> int:
        until = container.clock.now() + timedelta(seconds=1)
        return len(container.store.accesses(case.created_at, until, case_id=case.id))

    # WHEN its counter officer polls the progress
    before = reads()
    body = loket.get(f"/cases/{case.id}/progress").get_json()
    # THEN it holds the state, what runs and a stamp, nothing of the resident
    assert set(body) == {"case_id", "state", "version", "running", "stamp"}
    assert NIK not in str(body) and WA_ID not in str(body)
    # AND it is not recorded as a read of the case (the page, loaded again, is)
    assert reads() == before
    loket.case(case.id)
    assert reads() == before + 1
    # AND another kecamatan's counter officer may not poll it; an unknown case is 404
    other = login("loket.bontonompo@sapa.test")
    assert other.get(f"/cases/{case.id}/progress").status_code == 403
    assert loket.get("/cases/nope/progress").status_code == 404


def test_a_refused_action_leads_back_to_the_case(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a submitted case, WHEN the head of division tries the counter officer's step
    case = flow.to("form_submitted")
    resp = login(KABID).act(case, "check", json=False)
    # THEN the page says why, in Indonesian, with the way back to the case
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert f'href="/cases/{case.id}">Kembali ke permohonan</a>' in html
