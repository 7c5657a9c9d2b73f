"""The officers' workspace through the staff and approval functions: worklists and their SLA
clocks, claims (abandoned, concurrent, reassigned), replies, personal data on the case page,
the document viewer, the SIAK hand-off package and the head of division's decision."""

from __future__ import annotations

import io
import json
import re
import threading
import tomllib
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.adapters.pdf import pdf_page_count, simple_pdf
from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.services import guestbook
from sapa.services.guestbook import Submission, Upload
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import KK, NIK, Flow, tiny_png, valid_fields

from .conftest import (
    ADMIN,
    BONTONOMPO,
    DATA,
    JSON,
    KABID,
    KADIS,
    LOKET,
    LOKET_ELSEWHERE,
    OPERATOR,
    SOMBA_OPU,
    VERIFIKATOR,
    Officer,
    app_for,
    assert_unchanged,
    changes,
    siak_draft,
    snapshot,
)

SOP = tomllib.loads((DATA / "sop_gowa.toml").read_text("utf-8"))
MUTU_BAKU = {s["key"]: s["mutu_baku_seconds"] for s in SOP["steps"]}
LEAD_TIME_TARGET = SOP["sop"]["lead_time_target_seconds"]
CLAIM_TIMEOUT = SOP["sop"]["claim_timeout_seconds"]

Login = Callable[[str], Officer]


def submit_kk(flow: Flow, case: Case) -> Case:
    """The resident asks for a Kartu Keluarga (the other service) in the guest book."""
    files = {
        "kk_lama": Upload("kk-lama.png", tiny_png()),
        "buku_nikah": Upload("nikah.pdf", simple_pdf("Buku Nikah", ["Salinan"])),
    }
    case = guestbook.submit(flow.c, flow.token(case), Submission(valid_fields(service="kk"), files))
    flow.queue.take()
    return case


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


# ---- the worklist --------------------------------------------------------------------------------


def test_the_worklist_holds_only_the_officers_cases_oldest_waiting_first(
    flow: Flow, clock: FixedClock, login: Login
) -> None:
    # GIVEN three Somba Opu residents whose forms arrived in another order than they greeted:
    # A greets first, B second; B submits at +20 s, A at +30 s, C (greeted last) at +40 s
    a = flow.send_link(flow.greet(wa_id="6281100000001"))
    clock.advance(10)
    b = flow.send_link(flow.greet(wa_id="6281100000002"))
    clock.advance(10)
    b = flow.submit(b)
    clock.advance(10)
    a = flow.submit(a)
    clock.advance(10)
    c = flow.to("form_submitted", wa_id="6281100000003")
    # AND cases that are not the Somba Opu counter's: another kecamatan's, the verifier's,
    # and one waiting for the resident
    elsewhere = flow.to("form_submitted", wa_id="6281100000004", kecamatan=BONTONOMPO)
    verifier = flow.to("contacted", wa_id="6281100000005")
    resident = flow.to("link_sent", wa_id="6281100000006")
    clock.advance(5)

    # WHEN the Somba Opu counter officer opens his worklist
    rows = login(LOKET).worklist()

    # THEN he sees exactly his three cases, the one waiting longest on top
    assert ids(rows) == [b.id, a.id, c.id]
    waited = [r["clock"]["elapsed_seconds"] for r in rows]
    assert waited == [25, 15, 5]
    # AND the others are in the worklists of whom they wait for
    assert ids(login(LOKET_ELSEWHERE).worklist()) == [elsewhere.id]
    assert ids(login(VERIFIKATOR).worklist()) == [verifier.id]
    assert resident.id not in ids(login(ADMIN).worklist())


def test_the_worklist_filters_by_kecamatan_and_service(flow: Flow, login: Login) -> None:
    # GIVEN three cases waiting for the file verifier: KTP-el of Somba Opu, KTP-el of
    # Bontonompo and a Kartu Keluarga of Somba Opu
    ktp = flow.to("contacted", wa_id="6281100000011")
    ktp_elsewhere = flow.to("contacted", wa_id="6281100000012", kecamatan=BONTONOMPO)
    kk = submit_kk(flow, flow.send_link(flow.greet(wa_id="6281100000013")))
    kk = flow.act(flow.act(kk, LOKET, "check"), LOKET, "contact")
    verifier = login(VERIFIKATOR)

    # WHEN he filters his worklist, THEN he sees what he asked for
    assert set(ids(verifier.worklist())) == {ktp.id, ktp_elsewhere.id, kk.id}
    assert ids(verifier.worklist(kecamatan=BONTONOMPO)) == [ktp_elsewhere.id]
    assert set(ids(verifier.worklist(kecamatan=SOMBA_OPU))) == {ktp.id, kk.id}
    assert ids(verifier.worklist(service="kk")) == [kk.id]
    assert set(ids(verifier.worklist(service="ktp_el"))) == {ktp.id, ktp_elsewhere.id}
    assert ids(verifier.worklist(kecamatan=SOMBA_OPU, service="ktp_el")) == [ktp.id]
    # AND the HTML page offers the kecamatan filter to him, keeping what he chose
    html = verifier.get("/worklist?kecamatan=730601", json=False).get_data(as_text=True)
    assert '<option value="730601" selected>' in html
    assert ktp_elsewhere.reg_no in html and ktp.reg_no not in html

    # GIVEN the counter officers' cases of two kecamatan
    mine = flow.to("form_submitted", wa_id="6281100000014")
    flow.to("form_submitted", wa_id="6281100000015", kecamatan=BONTONOMPO)
    # WHEN the Somba Opu counter officer asks for Bontonompo's, THEN he still sees only his own
    loket = login(LOKET)
    assert ids(loket.worklist(kecamatan=BONTONOMPO)) == [mine.id]
    assert 'name="kecamatan"' not in loket.get("/worklist", json=False).get_data(as_text=True)


def test_the_sla_clock_turns_amber_past_the_mutu_baku_and_red_past_the_lead_time_target(
    flow: Flow, clock: FixedClock, login: Login
) -> None:
    # GIVEN a case that has just been submitted (the counter's check, "periksa", is waiting),
    # at 09:00 on a Monday: the check's clock runs on the office's working hours
    clock.advance(24 * 3600)  # from Sunday 09:00 WITA
    greeted_at = clock.now()
    case = flow.to("form_submitted")
    officer = login(LOKET)

    def colour() -> str:
        (row,) = officer.worklist()
        assert row["id"] == case.id
        return str(row["clock"]["color"])

    # THEN the clock is green within the step's mutu baku, up to and including it
    assert colour() == "green"
    clock.advance(MUTU_BAKU["periksa"])
    assert colour() == "green"
    # WHEN one second more passes, THEN it is amber
    clock.advance(1)
    assert colour() == "amber"
    # AND it stays amber until the office's lead-time target for the whole case is passed
    clock.advance(LEAD_TIME_TARGET - (clock.now() - greeted_at).total_seconds())
    assert colour() == "amber"
    clock.advance(1)
    assert colour() == "red"
    # AND the HTML worklist shows it in red: the 7 working hours of its 24 (Monday 09:00–12:00
    # and 13:00–16:00, Tuesday 08:00–09:00), and the 24 hours beside them
    html = officer.get("/worklist", json=False).get_data(as_text=True)
    assert re.search(r'<span class="clock red"[^>]*>\s*7 j kerja</span>', html), html
    assert re.search(r'<span class="hint">\s*24 j total</span>', html), html


# ---- claims --------------------------------------------------------------------------------------


def test_an_abandoned_claim_expires_after_the_claim_timeout(
    container: Container, flow: Flow, clock: FixedClock, login: Login, two_lokets: str
) -> None:
    # GIVEN a case the first Somba Opu counter officer took and then left
    case = flow.to("form_submitted")
    first, second = login(LOKET), login(two_lokets)
    assert first.act(case.id, "claim").status_code == 200
    # WHEN the second one tries just before the claim times out
    clock.advance(CLAIM_TIMEOUT - 1)
    before = snapshot(container, case.id)
    early = second.act(case.id, "claim")
    # THEN the case is still the first's, and the refusal says whose it is
    assert early.status_code == 409, early.get_json()
    assert "oleh Petugas Loket Somba Opu." in early.get_json()["message"]
    assert second.act(case.id, "check").status_code == 409
    assert_unchanged(container, case.id, before)
    # WHEN the claim timeout has passed
    clock.advance(1)
    late = second.act(case.id, "claim")
    # THEN the second one may take it, and the first may no longer check it
    assert late.status_code == 200, late.get_json()
    assert first.act(case.id, "check").status_code == 409
    assert second.act(case.id, "check").status_code == 200
    run = next(r for r in container.store.get(case.id).steps if r.step == "periksa")
    assert (run.claimed_by, run.done_by) == (two_lokets, two_lokets)


@pytest.mark.parametrize("attempt", range(5))
def test_two_officers_claiming_at_once_one_wins_and_the_other_is_told_who(
    container: Container, flow: Flow, login: Login, two_lokets: str, attempt: int
) -> None:
    # GIVEN a submitted case and the two Somba Opu counter officers, each in his own browser
    case = flow.to("form_submitted")
    officers = [login(LOKET), login(two_lokets)]
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def claim(officer: Officer) -> None:
        barrier.wait()
        resp = officer.act(case.id, "claim")
        results[officer.email] = (resp.status_code, resp.get_json())

    # WHEN both press "Ambil" at the same moment
    threads = [threading.Thread(target=claim, args=(o,)) for o in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # THEN exactly one wins, and the other gets 409 naming the winner (by name)
    statuses = sorted(status for status, _ in results.values())
    assert statuses == [200, 409], results
    winner = next(email for email, (status, _) in results.items() if status == 200)
    loser_body = next(body for status, body in results.values() if status == 409)
    member = container.staff.get(winner)
    assert member is not None
    assert f"sedang ditangani oleh {member.name}." in loser_body["message"]
    stored = container.store.get(case.id)
    assert stored.current_run(container.sop).claimed_by == winner  # type: ignore[union-attr]
    claims = [e for e in container.store.events(case.id) if e.event == "claim"]
    assert [e.actor_id for e in claims] == [winner]


def test_the_admin_reassigns_a_claimed_step_to_an_officer_of_its_role(
    container: Container, flow: Flow, login: Login, two_lokets: str
) -> None:
    # GIVEN a case the first Somba Opu counter officer has taken
    case = flow.to("form_submitted")
    first, second, admin = login(LOKET), login(two_lokets), login(ADMIN)
    assert first.act(case.id, "claim").status_code == 200
    # THEN the admin is offered exactly the counter officers of Somba Opu
    offered = {a["email"] for a in admin.case(case.id)["assignees"]}
    assert offered == {LOKET, two_lokets}
    before = snapshot(container, case.id)

    # WHEN the admin hands it to an officer of another role or kecamatan, or without one
    for assignee, status in ((VERIFIKATOR, 422), ("nobody@sapa.test", 422), ("", 422)):
        resp = admin.act(case.id, "reassign", assignee=assignee)
        # THEN it is refused and nothing changes
        assert resp.status_code == status, (assignee, resp.get_json())
        assert "assignee" in resp.get_json()["fields"]
    wrong_kecamatan = admin.act(case.id, "reassign", assignee=LOKET_ELSEWHERE)
    assert wrong_kecamatan.status_code == 403, wrong_kecamatan.get_json()
    # AND officers who are not admins may not reassign at all
    for who in (first, second, login(KABID)):
        resp = who.act(case.id, "reassign", assignee=two_lokets)
        assert resp.status_code in (403, 409), resp.get_json()
    assert_unchanged(container, case.id, before)

    # WHEN the admin hands it to the second counter officer of Somba Opu
    resp = admin.act(case.id, "reassign", assignee=two_lokets)
    # THEN it is his, recorded with who had it before
    assert resp.status_code == 200, resp.get_json()
    last = container.store.events(case.id)[-1]
    assert (last.event, last.actor_id, last.role) == ("reassign", ADMIN, "admin")
    assert (last.detail["from"], last.detail["to"]) == (LOKET, two_lokets)
    assert second.case(case.id)["claimed_by"] == two_lokets
    # AND the first may no longer do the step; the second may
    assert first.act(case.id, "check").status_code == 409
    assert second.act(case.id, "check").status_code == 200


# ---- replies -------------------------------------------------------------------------------------


def test_a_reply_from_the_case_page_queues_the_text_and_is_audited(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    queue: RecordingQueue,
    login: Login,
    run_task: Callable[..., Any],
) -> None:
    # GIVEN a case the counter officer is looking at
    case = flow.to("form_submitted")
    officer = login(LOKET)
    text = "Selamat siang Pak Andi, foto KK sudah kami terima. Mohon ditunggu."
    # WHEN he writes to the resident with the page's form
    resp = officer.act(case.id, "reply", json=False, message=f"  {text}\n")
    # THEN the page comes back, a notify task carries his text, and the audit trail says so
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/cases/{case.id}")
    (task,) = queue.tasks
    assert task.kind == "notify"
    assert task.payload["kind"] == "text"
    assert task.payload["params"]["body"] == text
    assert task.payload["actor"]["id"] == LOKET
    last = container.store.events(case.id)[-1]
    assert (last.event, last.actor_id, last.detail) == ("reply", LOKET, {"length": len(text)})
    # AND when the queue delivers it, the resident gets it on WhatsApp from Somba Opu's number
    assert run_task(task.kind, task.payload, task.name or "").status_code == 200
    assert [(s.kind, s.to, s.body) for s in wa.sent][-1] == ("text", case.wa_id, text)
    assert f"demo-{SOMBA_OPU}" == wa.sent[-1].phone_number_id
    assert text in [m["body"] for m in officer.case(case.id)["messages"]]

    # WHEN he sends an empty reply, THEN nothing is queued or recorded
    before = snapshot(container, case.id)
    empty = officer.act(case.id, "reply", message="   ")
    assert empty.status_code == 422
    assert_unchanged(container, case.id, before)


# ---- personal data and documents on the case page ------------------------------------------------


@pytest.mark.parametrize(
    ("email", "sees_nik"),
    [
        (LOKET, True),
        (VERIFIKATOR, True),
        (OPERATOR, True),
        (KABID, False),
        (KADIS, False),
        (ADMIN, False),
    ],
)
def test_the_case_page_shows_the_nik_only_to_the_roles_that_enter_it(
    flow: Flow, login: Login, email: str, sees_nik: bool
) -> None:
    # GIVEN a case entered in SIAK (every officer may open it)
    case = flow.to("entered_in_siak")
    officer = login(email)
    # WHEN the officer opens it (JSON and HTML)
    body = officer.case(case.id)
    raw = officer.get(f"/cases/{case.id}").get_data(as_text=True)
    html = officer.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    # THEN the NIK and the KK number are in full, or masked and nowhere in the page
    form = body["case"]["form"]
    if sees_nik:
        assert (form["nik"], form["kk"]) == (NIK, KK)
        assert NIK in html
    else:
        assert form["nik"] == NIK[:4] + "*" * 8 + NIK[-4:]
        assert form["kk"] != KK and form["kk"].startswith(KK[:4])
        for secret in (NIK, KK):
            assert secret not in raw
            assert secret not in html


def test_a_document_is_served_inline_and_may_only_be_framed_by_the_workspace(
    container: Container, flow: Flow, login: Login
) -> None:
    # GIVEN a case with the resident's two documents and SIAK's draft
    case = flow.to("entered_in_siak")
    officer = login(OPERATOR)
    docs = [*case.documents, case.draft]
    for n, doc in enumerate(docs):
        assert doc is not None
        # WHEN the viewer loads document n
        resp = officer.get(f"/cases/{case.id}/documents/{n}", json=False)
        # THEN it is that file, inline, and only a page of the same origin may frame it
        assert resp.status_code == 200
        assert resp.get_data() == container.blobs.get(doc.key)
        assert resp.mimetype == doc.content_type
        assert resp.headers["Content-Disposition"] == "inline"
        csp = [d.strip() for d in resp.headers["Content-Security-Policy"].split(";")]
        assert "frame-ancestors 'self'" in csp
        assert "default-src 'none'" in csp  # a PDF or image, never a script
        assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # AND the case page that frames them allows same-origin frames but is never framed itself
    page = officer.get(f"/cases/{case.id}", json=False)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    html = page.get_data(as_text=True)
    # (one viewer: the draft the head of division decides on; each document a link into it)
    assert f'<iframe name="viewer" class="viewer" src="/cases/{case.id}/documents/2"' in html
    for n in range(len(docs)):
        assert f'href="/cases/{case.id}/documents/{n}" target="viewer"' in html
    # AND beyond the last document, or to a counter officer of another kecamatan, nothing
    assert officer.get(f"/cases/{case.id}/documents/{len(docs)}").status_code == 404
    assert login(LOKET_ELSEWHERE).get(f"/cases/{case.id}/documents/0").status_code == 403


# ---- the SIAK hand-off package -------------------------------------------------------------------


def pdf_lines(pdf: bytes) -> list[str]:
    """The text lines of a SAPA simple_pdf (uncompressed literal strings, one per line: the
    title, the body lines, the footer)."""
    return [
        m.group(1).decode("latin-1").replace("\\(", "(").replace("\\)", ")")
        for m in re.finditer(rb"\(((?:[^()\\]|\\.)*)\) Tj", pdf)
    ]


def test_the_siak_operator_downloads_the_hand_off_package_after_forwarding(
    container: Container,
    flow: Flow,
    queue: RecordingQueue,
    clock: FixedClock,
    login: Login,
    run_task: Callable[..., Any],
) -> None:
    from sapa.domain.texts import FIELD_LABELS
    from sapa.services.handoff import SIAK_ORDER

    # GIVEN a contacted case that the file verifier forwards in the workspace
    case = flow.to("contacted")
    operator = login(OPERATOR)
    clock.advance(30)
    assert login(VERIFIKATOR).act(case.id, "forward").status_code == 200
    # THEN the package is not there until the siak_handoff task has run
    assert operator.get(f"/cases/{case.id}/handoff").status_code == 404
    (task,) = [t for t in queue.take() if t.kind == "siak_handoff"]
    ran = run_task(task.kind, task.payload, task.name or "")
    assert ran.get_json() == {"status": "ok", "result": "ready"}
    stored = container.store.get(case.id)
    assert stored.handoff is not None
    assert operator.case(case.id)["handoff"] is True

    # WHEN the operator downloads it
    resp = operator.get(f"/cases/{case.id}/handoff", json=False)
    # THEN it is a zip attachment named after the case
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="serah-terima-siak-{case.reg_no}.zip"'
    )
    package = resp.get_data()
    z = zipfile.ZipFile(io.BytesIO(package))
    names = z.namelist()
    # with the summary first, then each document, then the data
    assert names == ["00-ringkasan.pdf", "01-kk.png", "02-ktp_lama.pdf", "data.json"]
    summary = z.read("00-ringkasan.pdf")
    assert pdf_page_count(summary) >= 1
    lines = pdf_lines(summary)
    assert f"Nomor permohonan: {case.reg_no}" in lines
    labels = [line.split(":")[0] for line in lines if ":" in line]
    in_pdf = [labels.index(FIELD_LABELS[k]) for k in SIAK_ORDER]
    assert in_pdf == sorted(in_pdf), "the summary lists the data in SIAK's order"
    assert f"NIK: {NIK}" in lines  # the operator types it in: in full
    for doc, name in zip(stored.documents, names[1:3], strict=True):
        assert z.read(name) == container.blobs.get(doc.key)
    data = json.loads(z.read("data.json"))
    assert data["reg_no"] == case.reg_no
    assert list(data["form"]) == list(SIAK_ORDER), "data.json in SIAK's order"
    assert data["form"]["nik"] == NIK and data["form"]["kk"] == KK

    # AND a counter officer or the head of division may not download it
    assert login(LOKET).get(f"/cases/{case.id}/handoff").status_code == 403
    assert login(KABID).get(f"/cases/{case.id}/handoff").status_code == 403
    assert login(ADMIN).get(f"/cases/{case.id}/handoff").status_code == 200

    # WHEN the task runs again later (a retry), THEN the package is the same bytes
    clock.advance(3600)
    before = snapshot(container, case.id)
    again = run_task(task.kind, task.payload, "retry-of-" + (task.name or ""))
    assert again.get_json() == {"status": "ok", "result": "already_ready"}
    # (the retry re-saves the case unchanged: only its version moves)
    assert set(changes(before, snapshot(container, case.id))) <= {"case.version"}
    assert operator.get(f"/cases/{case.id}/handoff", json=False).get_data() == package
    from sapa.services.handoff import build_package

    assert build_package(container, container.store.get(case.id)) == package


# ---- the head of division's decision (approval function) -----------------------------------------


@pytest.fixture
def approval(container: Container) -> Callable[[Officer], Any]:
    """`approval(officer)`: a client of the approval function with the officer's session."""

    def client(officer: Officer) -> Any:
        c = app_for("approval").test_client()
        cookie = officer.client.get_cookie("sapa_staff")
        assert cookie is not None
        c.set_cookie("sapa_staff", cookie.value)
        return c

    return client


def test_the_head_of_division_approves_in_the_approval_function(
    container: Container, flow: Flow, login: Login, approval: Callable[[Officer], Any]
) -> None:
    # GIVEN a case entered in SIAK and the head of division's session
    case = flow.to("entered_in_siak")
    kabid = login(KABID)
    client = approval(kabid)
    before = snapshot(container, case.id)
    # WHEN he decides without the form's csrf token, or without a decision
    no_csrf = client.post(f"/{case.id}", data={"decision": "approve"}, headers=JSON)
    no_decision = client.post(f"/{case.id}", data={"csrf": kabid.csrf}, headers=JSON)
    # THEN nothing happens
    assert no_csrf.status_code == 403
    assert no_decision.status_code == 422
    assert_unchanged(container, case.id, before)
    # WHEN he approves with it (as the case page's form does)
    resp = client.post(f"/{case.id}", data={"decision": "approve", "csrf": kabid.csrf})
    # THEN he is sent back to the case page, and the case is approved by him
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/staff/cases/{case.id}")
    stored = container.store.get(case.id)
    assert stored.state == "approved"
    last = container.store.events(case.id)[-1]
    assert (last.event, last.actor_id, last.role) == ("approve", KABID, "kabid")
    # AND the head of office now has the sign button
    assert "sign" in login(KADIS).case(case.id)["allowed"]


def test_the_head_of_division_returns_with_a_reason(
    container: Container, flow: Flow, login: Login, approval: Callable[[Officer], Any]
) -> None:
    case = flow.to("entered_in_siak")
    kabid = login(KABID)
    client = approval(kabid)
    before = snapshot(container, case.id)
    # WHEN he returns it without a reason, THEN he is asked for one
    resp = client.post(f"/{case.id}", data={"decision": "return", "csrf": kabid.csrf}, headers=JSON)
    assert resp.status_code == 422
    assert "reason" in resp.get_json()["fields"]
    assert_unchanged(container, case.id, before)
    # WHEN he returns it with a reason
    resp = client.post(
        f"/{case.id}",
        data={"decision": "return", "reason": "Alamat di SIAK salah ketik", "csrf": kabid.csrf},
        headers=JSON,
    )
    # THEN it is back with the SIAK operator, the reason on the record
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["case"]["state"] == "returned"
    stored = container.store.get(case.id)
    assert stored.waiting_step(container.sop).role == "operator_siak"  # type: ignore[union-attr]
    last = container.store.events(case.id)[-1]
    assert (last.event, last.actor_id) == ("return", KABID)
    assert last.detail["reason"] == "Alamat di SIAK salah ketik"
    assert case.id in {r["id"] for r in login(OPERATOR).worklist()}


@pytest.mark.parametrize("email", [LOKET, LOKET_ELSEWHERE, OPERATOR, KADIS, ADMIN])
def test_only_the_head_of_division_may_decide(
    container: Container,
    flow: Flow,
    login: Login,
    approval: Callable[[Officer], Any],
    email: str,
) -> None:
    case = flow.to("entered_in_siak")
    officer = login(email)
    client = approval(officer)
    before = snapshot(container, case.id)
    # WHEN another officer posts a decision with his own valid session and csrf token
    for decision in ("approve", "return"):
        resp = client.post(
            f"/{case.id}",
            data={"decision": decision, "reason": "coba", "csrf": officer.csrf},
            headers=JSON,
        )
        # THEN it is refused and nothing changes
        assert resp.status_code in (403, 409), resp.get_json()
    assert_unchanged(container, case.id, before)
    # AND the kabid's csrf token is no use to him either
    kabid = login(KABID)
    resp = client.post(f"/{case.id}", data={"decision": "approve", "csrf": kabid.csrf})
    assert resp.status_code == 403
    assert_unchanged(container, case.id, before)


def test_enter_siak_needs_a_reference_and_a_readable_pdf(
    container: Container, flow: Flow, login: Login
) -> None:
    case = flow.to("forwarded")
    operator = login(OPERATOR)
    before = snapshot(container, case.id)
    for form in (
        {"siak_ref": "", "draft": (io.BytesIO(siak_draft()), "konsep.pdf")},
        {"siak_ref": "SIAK-1"},
        {"siak_ref": "SIAK-1", "draft": (io.BytesIO(tiny_png()), "konsep.pdf")},
        {"siak_ref": "SIAK-1", "draft": (io.BytesIO(b"%PDF-1.7\nrusak"), "konsep.pdf")},
    ):
        resp = operator.act(case.id, "enter_siak", **form)
        assert resp.status_code == 422, resp.get_json()
    assert_unchanged(container, case.id, before)
    ok = operator.act(
        case.id, "enter_siak", siak_ref="SIAK-7306-9", draft=(io.BytesIO(siak_draft()), "k.pdf")
    )
    assert ok.status_code == 200
    stored = container.store.get(case.id)
    assert (stored.state, stored.siak_ref) == ("entered_in_siak", "SIAK-7306-9")
    assert stored.draft is not None
    assert container.blobs.get(stored.draft.key) == siak_draft()
