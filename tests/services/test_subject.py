"""Data-subject rights and the access log (UU 27/2022): find, export, correct, erase; the breach
report; reads that cannot be recorded do not happen. Cases are walked along the SOP by the real
services (tests.functions.conftest.Flow)."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sapa import cli
from sapa.adapters.meta_webhook import StatusUpdate
from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import Conflict, Forbidden, NotFound, PermanentError, TransientError
from sapa.ports import AccessRecord, CaseStore, StaffMember
from sapa.services import access, guestbook, intake, signing, subject
from sapa.services.guestbook import Submission
from tests.conftest import RecordingQueue
from tests.functions.conftest import (
    KK,
    NIK,
    OTHER_WA_ID,
    WA_ID,
    FakeWhatsApp,
    Flow,
    snapshot,
    valid_fields,
    valid_files,
)

ADMIN = "admin@sapa.test"
LOKET = "loket.sombaopu@sapa.test"
# Another Somba Opu NIK with the same birth date (15 Aug 1990), and one born on 16 Aug 1990.
NIK_SAME_BIRTH = "7306081508900002"
NIK_OTHER_BIRTH = "7306081608900001"
OTHER_NIK = "7306015508900003"  # a woman of Bontonompo born on 15 Aug 1990
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def flow(container: Container) -> Flow:
    fake = FakeWhatsApp()
    container.whatsapp = fake  # type: ignore[misc]
    assert isinstance(container.queue, RecordingQueue)
    return Flow(container, fake, container.queue)


def staff(c: Container, email: str) -> StaffMember:
    member = c.staff.get(email)
    assert member is not None
    return member


def accesses(c: Container, **kw: Any) -> list[AccessRecord]:
    return c.store.accesses(EPOCH, c.clock.now() + timedelta(days=1), **kw)


def rejected(flow: Flow, **who: Any) -> Case:
    """A closed case with the resident's data and documents (rejected after the guest book)."""
    case = flow.to("form_submitted", **who)
    return flow.act(case, flow.loket_of(case.kecamatan), "reject", reason="Data tidak sesuai")


def strangers(flow: Flow) -> Case:
    """A closed case of another resident (her own NIK and number, in Bontonompo)."""
    case = flow.send_link(flow.greet(wa_id=OTHER_WA_ID, kecamatan="730601"))
    fields = valid_fields(
        nik=OTHER_NIK, wa_number=OTHER_WA_ID, desa=flow.c.desa["730601"][0].name, name="Sitti"
    )
    case = guestbook.submit(flow.c, flow.token(case), Submission(fields, valid_files()))
    flow.queue.take()
    return flow.act(case, flow.loket_of("730601"), "reject", reason="Data tidak sesuai")


def delivered(flow: Flow) -> Case:
    """A case whose signed document reached the resident (closed, with a legal hold)."""
    case = flow.sign(flow.to("approved"))
    for task in flow.queue.take():
        if task.kind == "deliver":
            signing.deliver(flow.c, task.payload, task.name or "")
    sent = flow.wa.sent[-1]
    assert sent.kind == "document"
    wamid = f"wamid.out.{len(flow.wa.sent)}"
    intake.receive(
        flow.c, [], [StatusUpdate(wamid, sent.phone_number_id, "delivered", flow.c.clock.now())]
    )
    case = flow.c.store.get(case.id)
    assert case.state == "delivered"
    return case


def unzip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


# ---- the subject ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nik", "wa", "message"),
    [
        ("", "", subject.SUBJECT_ONE),
        (NIK, WA_ID, subject.SUBJECT_ONE),
        ("12345", "", "NIK harus terdiri dari 16 angka."),
        ("", "12", "Nomor WhatsApp tidak valid. Contoh: 081234567890."),
    ],
)
def test_a_request_names_exactly_one_valid_nik_or_number(nik: str, wa: str, message: str) -> None:
    with pytest.raises(PermanentError) as err:
        subject.parse_subject(nik, wa)
    assert err.value.message == message


def test_numbers_are_normalised_and_shown_masked() -> None:
    who = subject.parse_subject(wa="0812-3456-7890")
    assert (who.kind, who.value, who.masked) == ("wa", WA_ID, "6281******890")
    assert subject.parse_subject(nik=f" {NIK} ").masked == "7306********0001"


# ---- find -------------------------------------------------------------------------------------


def test_find_by_nik_or_number_lists_the_residents_cases_and_records_the_search(
    container: Container, flow: Flow
) -> None:
    # GIVEN two cases of one resident (one still before the guest book) and another's
    first = rejected(flow)
    container.clock.advance(60)  # type: ignore[attr-defined]
    second = flow.greet()
    strangers(flow)
    admin = staff(container, ADMIN)
    # WHEN the admin searches by NIK, then by number
    by_nik = subject.find(container, admin, subject.parse_subject(nik=NIK), client="10.0.0.9")
    by_wa = subject.find(container, admin, subject.parse_subject(wa="081234567890"))
    # THEN the NIK finds the case that holds it, the number both of the resident's cases
    assert [k.id for k in by_nik] == [first.id]
    assert [k.id for k in by_wa] == [first.id, second.id]
    # AND each hit is in the access log, under the admin, with the client hashed
    rows = accesses(container, actor_id=ADMIN)
    assert [(r.case_id, r.what) for r in rows] == [
        (first.id, "subject_search"),
        (first.id, "subject_search"),
        (second.id, "subject_search"),
    ]
    assert rows[0].client and "10.0.0.9" not in rows[0].client
    assert rows[0].role == "admin" and rows[0].reg_no == first.reg_no


def test_only_an_admin_may_act_for_a_data_subject_and_nothing_is_recorded_otherwise(
    container: Container, flow: Flow
) -> None:
    case = rejected(flow)
    loket = staff(container, LOKET)
    before = snapshot(container, case.id)
    who = subject.parse_subject(nik=NIK)
    calls = [
        lambda: subject.find(container, loket, who),
        lambda: subject.export(container, loket, who),
        lambda: subject.correct(container, loket, case.id, "name", "Andi B", "salah ketik"),
        lambda: subject.erase(container, loket, case.id, "permintaan pemohon"),
    ]
    for call in calls:
        with pytest.raises(Forbidden) as err:
            call()
        assert err.value.message == subject.ADMIN_ONLY
    assert snapshot(container, case.id) == before
    assert accesses(container) == []


# ---- export -----------------------------------------------------------------------------------


def test_export_holds_everything_about_the_resident_and_is_recorded_first(
    container: Container, flow: Flow
) -> None:
    # GIVEN a delivered case (documents, SIAK draft and package, signed PDF, conversation) and a
    # rejected one of the same resident, and a stranger's case
    done = delivered(flow)
    flow.c.clock.advance(60)  # type: ignore[attr-defined]
    other = rejected(flow)
    stranger = strangers(flow)
    admin = staff(container, ADMIN)
    # WHEN the admin exports by the number
    result = subject.export(container, admin, subject.parse_subject(wa=WA_ID), client="10.1.1.1")
    zf = unzip(result.data)
    names = set(zf.namelist())
    # THEN the zip has an index, a summary, and per case its data, history, conversation and
    # access log, and every stored file byte for byte
    assert result.cases == 2 and result.missing == 0
    assert result.filename.startswith("data-subjek-") and result.filename.endswith(".zip")
    index = json.loads(zf.read("index.json"))
    assert [k["id"] for k in index["kasus"]] == [done.id, other.id]
    assert index["oleh"] == ADMIN and index["subjek"] == {"jenis": "wa", "nilai": "6281******890"}
    assert stranger.reg_no not in zf.read("index.json").decode()
    for entry, case in zip(index["kasus"], (done, other), strict=True):
        case = container.store.get(case.id)
        folder = f"kasus/{case.reg_no}"
        for part in ("data.json", "riwayat_audit.json", "percakapan.json", "log_akses.json"):
            assert f"{folder}/{part}" in names
        data = json.loads(zf.read(f"{folder}/data.json"))
        assert data["form"]["nik"] == NIK and data["form"]["kk"] == KK
        events = json.loads(zf.read(f"{folder}/riwayat_audit.json"))
        assert [e["event"] for e in events] == [e.event for e in container.store.events(case.id)]
        assert events[-1]["event"] == "subject_export" and events[-1]["actor_id"] == ADMIN
        talk = json.loads(zf.read(f"{folder}/percakapan.json"))
        assert [m["id"] for m in talk] == [m.id for m in container.store.messages(case.id)]
        log = json.loads(zf.read(f"{folder}/log_akses.json"))
        assert log[-1]["apa"] == "subject_export" and log[-1]["oleh"] == ADMIN
        refs = list(case.documents)
        refs += [d for d in (case.draft, case.handoff, case.signed) if d is not None]
        files = [d["berkas"] for d in entry["dokumen"]]
        assert len(files) == len(refs) and None not in files
        for ref, name in zip(refs, files, strict=True):
            assert zf.read(name) == container.blobs.get(ref.key)
    signed = container.store.get(done.id).signed
    assert signed is not None
    assert any(n.endswith("dokumen-bertanda-tangan.pdf") for n in names)
    summary = zf.read("RINGKASAN.txt").decode()
    assert "UU 27/2022" in summary and done.reg_no in summary and other.reg_no in summary
    assert "Ditolak" in summary and "Andi Baso" in summary
    # AND each exported case has the export in the access log and in its audit trail
    for case in (done, other):
        assert accesses(container, case_id=case.id)[-1].what == "subject_export"
    assert accesses(container, case_id=stranger.id) == []


def test_export_names_files_already_deleted_by_retention(container: Container, flow: Flow) -> None:
    case = rejected(flow)
    gone = container.store.get(case.id).documents[0]
    assert container.blobs.delete(gone.key)
    result = subject.export(container, staff(container, ADMIN), subject.parse_subject(nik=NIK))
    index = json.loads(unzip(result.data).read("index.json"))
    assert result.missing == 1
    assert index["kasus"][0]["dokumen"][0] == {
        "berkas": None,
        "sumber": gone.source,
        "dihapus": True,
    }
    assert (
        "sudah dihapus sesuai jadwal retensi: 1"
        in unzip(result.data).read("RINGKASAN.txt").decode()
    )


def test_export_of_an_unknown_subject_is_not_found_and_records_nothing(
    container: Container, flow: Flow
) -> None:
    rejected(flow)
    with pytest.raises(NotFound) as err:
        subject.export(container, staff(container, ADMIN), subject.parse_subject(nik=KK))
    assert err.value.message == subject.NO_CASES
    assert accesses(container) == []


# ---- correction -------------------------------------------------------------------------------


def test_a_correction_sets_the_new_value_and_audits_both_masked_with_the_reason(
    container: Container, flow: Flow
) -> None:
    case = rejected(flow)
    admin = staff(container, ADMIN)
    # WHEN the admin corrects the NIK (same birth date, so the form stays consistent)
    after = subject.correct(container, admin, case.id, "nik", NIK_SAME_BIRTH, "salah ketik")
    # THEN the case holds the new NIK, the audit event names the admin, the field, the reason
    # and both values masked
    assert after.form["nik"] == NIK_SAME_BIRTH
    event = container.store.events(case.id)[-1]
    assert (event.event, event.actor_id, event.role) == ("data_corrected", ADMIN, "admin")
    assert event.detail == {
        "field": "nik",
        "old": "7306********0001",
        "new": "7306********0002",
        "reason": "salah ketik",
    }
    assert NIK not in json.dumps(event.model_dump(mode="json"))
    # AND the subject index follows: the old NIK finds nothing, the new one the case
    assert container.store.cases_of_subject(nik=NIK) == []
    assert [k.id for k in container.store.cases_of_subject(nik=NIK_SAME_BIRTH)] == [case.id]
    # AND free text is corrected too
    subject.correct(container, admin, case.id, "address", "Jl. Poros Malino 2", "pindah")
    assert container.store.get(case.id).form["address"] == "Jl. Poros Malino 2"


@pytest.mark.parametrize(
    ("field", "value", "reason", "message"),
    [
        ("nik", NIK_SAME_BIRTH, "  ", subject.REASON_REQUIRED),
        ("nik", "123", "r", "NIK harus terdiri dari 16 angka."),
        ("nik", NIK_OTHER_BIRTH, "r", subject.BIRTH_MISMATCH),
        ("birth_date", "1990-08-16", "r", subject.BIRTH_MISMATCH),
        ("birth_date", "15-08-1990", "r", subject.BIRTH_INVALID),
        ("kk", "1234", "r", "Nomor KK harus terdiri dari 16 angka."),
        ("desa", "Kota Lain", "r", subject.DESA_UNKNOWN),
        ("wa_number", "12", "r", "Nomor WhatsApp tidak valid. Contoh: 081234567890."),
        ("service", "kk", "r", subject.FIELD_NOT_CORRECTABLE.format(field="service")),
        ("notes", "catatan", "r", subject.FIELD_NOT_GIVEN.format(label="Catatan")),
        ("name", "", "r", subject.VALUE_REQUIRED),
        ("name", "Andi Baso", "r", subject.VALUE_UNCHANGED),
        ("name", "x" * 201, "r", subject.VALUE_TOO_LONG.format(limit=200)),
    ],
)
def test_a_bad_correction_is_refused_with_the_reason_and_changes_nothing(
    container: Container, flow: Flow, field: str, value: str, reason: str, message: str
) -> None:
    case = rejected(flow)
    before = snapshot(container, case.id)
    with pytest.raises(PermanentError) as err:
        subject.correct(container, staff(container, ADMIN), case.id, field, value, reason)
    assert err.value.message == message
    assert snapshot(container, case.id) == before


# ---- erasure ----------------------------------------------------------------------------------


def test_erasure_deletes_the_files_redacts_the_conversation_and_anonymises(
    container: Container, flow: Flow
) -> None:
    case = rejected(flow)
    stored = container.store.get(case.id)
    keys = [d.key for d in stored.documents]
    assert keys and all(container.blobs.exists(k) for k in keys)
    assert any(m.body for m in container.store.messages(case.id))
    # WHEN the admin erases it
    after = subject.erase(container, staff(container, ADMIN), case.id, "permintaan pemohon")
    # THEN the files are gone, every message is redacted, the data is masked
    assert not any(container.blobs.exists(k) for k in keys)
    assert after.documents == []
    assert all(
        m.body.startswith("[dihapus") and not m.data for m in container.store.messages(case.id)
    )
    assert after.form == {"name": "A*** B***", "nik": "7306********0001", "kk": "7306********0001"}
    assert WA_ID not in after.model_dump_json()
    # AND the audit trail has the admin's request with the reason, then the schedule's steps
    tail = [(e.event, e.actor_id) for e in container.store.events(case.id)][-3:]
    assert tail == [
        ("erasure", ADMIN),
        ("retention_documents", "system"),
        ("retention_personal_data", "system"),
    ]
    assert container.store.events(case.id)[-3].detail == {"reason": "permintaan pemohon"}
    # AND nobody finds it by NIK or number any more; a second erasure has nothing to do
    assert container.store.cases_of_subject(nik=NIK, wa_id=WA_ID) == []
    # AND the number's last-message time (no other open case needs it) is gone too
    assert container.store.last_inbound(stored.kecamatan, WA_ID) is None
    with pytest.raises(Conflict):
        subject.erase(container, staff(container, ADMIN), case.id, "lagi")


def test_erasure_is_refused_for_an_open_case_and_under_a_legal_hold(
    container: Container, flow: Flow
) -> None:
    admin = staff(container, ADMIN)
    open_case = flow.to("form_submitted")
    before = snapshot(container, open_case.id)
    with pytest.raises(Conflict) as err:
        subject.erase(container, admin, open_case.id, "permintaan pemohon")
    assert err.value.message == subject.CASE_OPEN.format(reg_no=open_case.reg_no)
    assert snapshot(container, open_case.id) == before
    flow.act(open_case, LOKET, "reject", reason="uji")
    # a delivered case keeps its signed document for the schedule's ten years
    held = delivered(flow)
    before = snapshot(container, held.id)
    with pytest.raises(Conflict) as err:
        subject.erase(container, admin, held.id, "permintaan pemohon")
    assert "wajib disimpan menurut jadwal retensi sampai" in err.value.message
    assert snapshot(container, held.id) == before


def test_erasure_needs_a_reason(container: Container, flow: Flow) -> None:
    case = rejected(flow)
    before = snapshot(container, case.id)
    with pytest.raises(PermanentError) as err:
        subject.erase(container, staff(container, ADMIN), case.id, " ")
    assert err.value.message == subject.REASON_REQUIRED
    assert snapshot(container, case.id) == before


# ---- access log: fail closed ------------------------------------------------------------------


class LogDown:
    """The real store, except that the access log cannot be written."""

    def __init__(self, inner: CaseStore, error: Exception) -> None:
        self.inner, self.error = inner, error

    def log_access(self, record: AccessRecord) -> None:
        raise self.error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("error", [TransientError("down"), OSError("disk full")])
def test_a_read_whose_record_cannot_be_written_is_refused(
    container: Container, flow: Flow, error: Exception
) -> None:
    case = rejected(flow)
    container.store = LogDown(container.store, error)  # type: ignore[assignment,misc]
    with pytest.raises(TransientError) as err:
        access.record(container, staff(container, LOKET), case, "case")
    assert err.value.message == access.LOG_UNAVAILABLE
    with pytest.raises(TransientError):
        subject.export(container, staff(container, ADMIN), subject.parse_subject(nik=NIK))


# ---- breach report ----------------------------------------------------------------------------


def test_breach_report_lists_reads_and_changes_in_the_window_without_personal_data(
    container: Container, flow: Flow
) -> None:
    start = container.clock.now()
    case = rejected(flow)
    container.clock.advance(3600)  # type: ignore[attr-defined]
    access.record(container, staff(container, LOKET), case, "document:0", client="10.0.0.1")
    end = container.clock.now() + timedelta(seconds=1)
    rows = access.breach_report(container, start, end)
    kinds = {(r.kind, r.what) for r in rows}
    assert (access.KIND_ACCESS, "document:0") in kinds
    assert (access.KIND_CHANGE, "submit_form") in kinds
    assert (access.KIND_CHANGE, "reject") in kinds
    assert all(r.reg_no == case.reg_no for r in rows)
    text = access.report_csv(rows)
    assert text.splitlines()[0] == ",".join(access.CSV_HEADER)
    for secret in (NIK, KK, WA_ID, "Andi"):
        assert secret not in text
    assert "pemohon 6281******890" in text  # the resident's own steps, masked
    # only the window: the read an hour later is outside [start, start + 1 h)
    early = access.breach_report(container, start, start + timedelta(minutes=30))
    assert (access.KIND_ACCESS, "document:0") not in {(r.kind, r.what) for r in early}
    with pytest.raises(PermanentError) as err:
        access.breach_report(container, end, start)
    assert err.value.message == access.WINDOW_INVALID


# ---- the command line -------------------------------------------------------------------------


def test_cli_subject_export_writes_a_private_zip_and_never_overwrites(
    container: Container, flow: Flow, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = rejected(flow)
    out = tmp_path / "subjek.zip"
    assert cli.main(["subject-export", "--nik", NIK, "--out", str(out), "--by", ADMIN]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"kasus/{case.reg_no}/data.json" in unzip(out.read_bytes()).namelist()
    assert "1 permohonan" in capsys.readouterr().out
    # the same file again is refused before anything is read; a non-admin is refused
    again = cli.main(["subject-export", "--nik", NIK, "--out", str(out), "--by", ADMIN])
    assert again == 2
    assert "sudah ada" in capsys.readouterr().err
    other = tmp_path / "lain.zip"
    assert cli.main(["subject-export", "--wa", WA_ID, "--out", str(other), "--by", LOKET]) == 2
    assert subject.ADMIN_ONLY in capsys.readouterr().err
    assert not other.exists()
    assert [r.what for r in accesses(container)] == ["subject_export"]


def test_cli_breach_report_prints_csv(
    container: Container, flow: Flow, capsys: pytest.CaptureFixture[str]
) -> None:
    case = rejected(flow)
    since = (container.clock.now() - timedelta(hours=1)).isoformat()
    until = (container.clock.now() + timedelta(hours=1)).isoformat()
    assert cli.main(["breach-report", "--since", since, "--until", until]) == 0
    out = capsys.readouterr().out
    assert out.startswith(",".join(access.CSV_HEADER)) and case.reg_no in out
    assert cli.main(["breach-report", "--since", "kemarin"]) == 2
    assert access.TIME_INVALID in capsys.readouterr().err


def test_cli_subject_reindex_restores_an_index_without_changing_any_case(
    container: Container, flow: Flow, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN cases stored before the index existed (its rows gone)
    first = rejected(flow)
    second = strangers(flow)
    db = getattr(container.store, "db", None)
    assert db is not None, "the embedded store is SQLite"
    db.conn().execute("DELETE FROM subjects")
    assert container.store.cases_of_subject(nik=NIK) == []
    before = [snapshot(container, k.id) for k in (first, second)]
    # WHEN the operator reindexes, with a page smaller than the number of cases
    assert cli.main(["subject-reindex", "--batch", "1"]) == 0
    # THEN every case is found again, and nothing else about them changed
    assert "2 permohonan diindeks ulang" in capsys.readouterr().out
    assert [k.id for k in container.store.cases_of_subject(nik=NIK)] == [first.id]
    assert [k.id for k in container.store.cases_of_subject(wa_id=OTHER_WA_ID)] == [second.id]
    assert [snapshot(container, k.id) for k in (first, second)] == before
    assert cli.main(["subject-reindex", "--batch", "0"]) == 2
