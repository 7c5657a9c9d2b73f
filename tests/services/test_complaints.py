"""Complaints: a resident files one on WhatsApp (ADUAN), about their request open or closed; the
heads and the admin see it on the worklist, answer it (audited, sent to the resident: the
template outside the 24-hour window) and close it with an outcome and the SP4N-LAPOR! pointer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.domain.errors import Conflict, IllegalTransition, ValidationFailed
from sapa.domain.texts import text
from sapa.services import complaints, intake
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner, inbound
from tests.services.test_pipeline import KABID, KADIS, LOKET, act, link_sent
from tests.services.test_survey import WA_ID


def write(c: Container, body: str, wamid: str) -> None:
    intake.receive(c, [inbound(body, wamid=wamid, at=c.clock.now())], [])


def test_aduan_files_a_complaint_on_the_closed_request_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, delivered: str
) -> None:
    c = container
    before = len(c.store.list_cases(limit=50))
    # WHEN the resident complains about their delivered request (Meta delivers it twice)
    write(c, "aduan: nama ibu salah di KK", "wamid.k1")
    write(c, "aduan: nama ibu salah di KK", "wamid.k1")
    runner.drain()
    # THEN one complaint on that case, with its deadline; no new request is opened
    case = c.store.get(delivered)
    (k,) = case.complaints
    assert (k.id, k.channel, k.text) == ("k1", "whatsapp", "nama ibu salah di KK")
    assert k.due_at == k.at + c.sla.complaint_response == k.at + timedelta(days=5)
    assert len(c.store.list_cases(limit=50)) == before
    assert [e.event for e in c.store.events(delivered)].count("complaint_filed") == 1
    # AND the resident is told it was received, with its number and deadline
    last = wa.sent[-1].body
    assert "nomor aduan k1" in last and k.due_at.strftime("%d-%m-%Y") in last


def test_aduan_alone_asks_and_the_next_message_is_the_complaint(
    container: Container, runner: Runner, wa: FakeWhatsApp, delivered: str, clock: FixedClock
) -> None:
    c = container
    write(c, "ADUAN", "wamid.ask")
    runner.drain()
    assert wa.sent[-1].body == text("wa_complaint_ask", reg_no=c.store.get(delivered).reg_no)
    assert c.store.get(delivered).complaints == []
    clock.advance(60)
    write(c, "Petugas meminta uang untuk mempercepat", "wamid.body")
    runner.drain()
    (k,) = c.store.get(delivered).complaints
    assert k.text == "Petugas meminta uang untuk mempercepat"
    # after the complaint, messages are messages again
    write(c, "terima kasih", "wamid.thanks")
    assert len(c.store.get(delivered).complaints) == 1


def test_a_complaint_during_an_open_request_stays_on_it(
    container: Container, runner: Runner
) -> None:
    c = container
    case_id = link_sent(c, runner)
    write(c, "ADUAN", "wamid.ask")
    # a keyword in between is a keyword, not the complaint
    write(c, "STATUS", "wamid.status")
    assert c.store.get(case_id).complaints == []
    write(c, "tautan buku tamu tidak bisa dibuka", "wamid.open")
    runner.drain()
    case = c.store.get(case_id)
    assert case.state == "link_sent" and len(case.complaints) == 1
    assert case.complaints[0].text == "tautan buku tamu tidak bisa dibuka"


def test_the_worklist_answers_and_closes_with_an_outcome(
    container: Container, runner: Runner, wa: FakeWhatsApp, delivered: str, clock: FixedClock
) -> None:
    c = container
    write(c, "ADUAN dokumen salah ketik", "wamid.k1")
    runner.drain()
    (entry,) = complaints.worklist(c)
    assert entry.case.id == delivered and not entry.late
    # the response time runs out: the worklist says it is late
    clock.advance(5 * 86400 + 1)
    assert complaints.worklist(c)[0].late
    # an officer of the steps does not answer complaints
    with pytest.raises(IllegalTransition):
        act(c, delivered, LOKET, "complaint_reply", complaint="k1", message="Maaf")
    # the head of division answers: audited, late, and sent as the template (window closed)
    act(c, delivered, KABID, "complaint_reply", complaint="k1", message="Maaf.\nKami perbaiki.")
    runner.drain()
    sent = wa.sent[-1]
    assert sent.kind == "template" and sent.body == "sapa_tanggapan_aduan"
    assert sent.params[1] == "Maaf. Kami perbaiki."
    replied = [e for e in c.store.events(delivered) if e.event == "complaint_replied"]
    assert replied[0].detail == {"complaint": "k1", "late": True}
    assert not complaints.worklist(c)[0].late  # answered, still open
    # closing needs a known outcome; then the resident is told, with SP4N-LAPOR!
    with pytest.raises(ValidationFailed):
        act(c, delivered, KADIS, "complaint_close", complaint="k1", outcome="whatever")
    act(c, delivered, KADIS, "complaint_close", complaint="k1", outcome="resolved")
    runner.drain()
    assert wa.sent[-1].body == "sapa_aduan_ditutup"
    assert wa.sent[-1].params[1] == "ditindaklanjuti dan selesai"
    assert complaints.worklist(c) == []
    with pytest.raises(Conflict):
        act(c, delivered, KADIS, "complaint_close", complaint="k1", outcome="resolved")


def test_inside_the_window_the_answer_and_the_closing_are_text(
    container: Container, runner: Runner, wa: FakeWhatsApp, delivered: str
) -> None:
    c = container
    write(c, "ADUAN lama sekali", "wamid.k1")
    runner.drain()
    act(c, delivered, KABID, "complaint_reply", complaint="k1", message="Mohon maaf.")
    act(c, delivered, KABID, "complaint_close", complaint="k1", outcome="unfounded")
    runner.drain()
    reply, closing = wa.sent[-2:]
    assert reply.kind == "text" and reply.body.endswith("Mohon maaf.")
    assert "SP4N-LAPOR!" in closing.body and "tidak terbukti" in closing.body
    assert closing.to == WA_ID


def test_the_retention_schedule_erases_what_was_written_and_keeps_the_counts(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    from sapa.domain.rollup import ALL, COMPLAINTS
    from sapa.services import retention
    from tests.services.test_retention import DAY, rejected_case

    c = container
    case_id = rejected_case(c, runner, wa, clock)
    write(c, "ADUAN Bapak Daeng Tika menolak tanpa alasan", "wamid.k1")
    act(c, case_id, KABID, "complaint_reply", complaint="k1", message="Kami periksa, Pak.")
    act(c, case_id, KABID, "complaint_close", complaint="k1", outcome="unfounded")
    day = clock.now().date()
    clock.advance(366 * DAY)
    retention.sweep(c)
    (k,) = c.store.get(case_id).complaints
    assert (k.text, k.reply, k.note, k.outcome) == ("", "", "", "unfounded")
    assert "Daeng Tika" not in c.store.get(case_id).model_dump_json()
    cells = c.store.rollup_total(COMPLAINTS, day, day, kecamatan=ALL, service=ALL)
    assert (cells["filed"], cells["closed"], cells["out|unfounded"]) == (1, 1, 1)


@pytest.fixture
def numbers(container: Container, tmp_path: Path) -> None:
    """The demo staff file with the head of division's WhatsApp number (before anything
    reads the staff)."""
    from importlib import resources

    from tests.services.test_sla_sweep import with_staff_file

    demo = resources.files("sapa.data").joinpath("staff_demo.toml").read_text("utf-8")
    kabid = 'email = "kabid@sapa.test"'
    assert demo.count(kabid) == 1
    with_staff_file(container, tmp_path, demo.replace(kabid, kabid + '\nwa = "081211110009"'))


def test_an_unanswered_complaint_past_its_time_alerts_the_head_once(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    numbers: None,
    delivered: str,
    clock: FixedClock,
) -> None:
    from sapa.services.sla_sweep import sweep
    from tests.services.test_sla_sweep import templates

    c = container
    write(c, "ADUAN belum ada kabar", "wamid.k1")
    runner.drain()
    # a microsecond before the response time runs out: nothing
    clock.advance(5 * 86400)
    assert sweep(c)["complaints_late"] == 0
    # past it: recorded once on the closed case, the head alerted once
    clock.advance(1)
    assert sweep(c)["complaints_late"] == 1
    runner.drain()
    assert sweep(c)["complaints_late"] == 0
    runner.drain()
    (alert,) = templates(wa, "sapa_petugas_aduan_terlambat")
    assert alert.to == "6281211110009" and alert.params[:2] == [c.store.get(delivered).reg_no, "k1"]
    events = [e for e in c.store.events(delivered) if e.event == "complaint_late"]
    assert len(events) == 1 and events[0].detail["complaint"] == "k1"
    # an answered complaint is never late
    write(c, "ADUAN kedua", "wamid.k2")
    act(c, delivered, KABID, "complaint_reply", complaint="k2", message="Sudah kami periksa.")
    clock.advance(6 * 86400)
    assert sweep(c)["complaints_late"] == 0


def tap(c: Container, button: str, wamid: str) -> None:
    """The resident taps a reply button SAPA sent (Meta's interactive button_reply)."""
    from sapa.adapters.meta_webhook import InboundMessage
    from sapa.services.names import BUTTON_PREFIX

    m = InboundMessage(
        wamid=wamid,
        phone_number_id="demo-730608",
        wa_id=WA_ID,
        profile_name="Andi",
        at=c.clock.now(),
        type="interactive",
        text=button,
        reply_id=BUTTON_PREFIX + button,
    )
    intake.receive(c, [m], [])


def test_the_invitations_buttons_file_a_complaint_or_stop_the_surveys(
    container: Container, runner: Runner, wa: FakeWhatsApp, delivered: str
) -> None:
    from sapa.services import survey

    c = container
    # "Ajukan aduan" asks for the complaint; the next message is it
    tap(c, "ADUAN", "wamid.tap1")
    runner.drain()
    assert "Silakan tuliskan aduan Anda" in wa.sent[-1].body
    write(c, "Foto di KTP saya buram", "wamid.body")
    assert [k.text for k in c.store.get(delivered).complaints] == ["Foto di KTP saya buram"]
    # "Jangan tanya lagi" stops the invitations to this number
    tap(c, "TANPA SURVEI", "wamid.tap2")
    runner.drain()
    assert survey.opted_out(c, WA_ID)
    assert wa.sent[-1].body == text("wa_survey_declined")
