"""staff /admin: data-subject requests and the breach report (admin only, CSRF on every POST), and
the access log of every read of a case page, a document and the SIAK hand-off package."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import TransientError
from sapa.ports import AccessRecord, CaseStore
from sapa.services import access, handoff, subject
from tests.functions.conftest import JSON, NIK, WA_ID, Flow, Officer, blob_files, snapshot

ADMIN = "admin@sapa.test"
LOKET = "loket.sombaopu@sapa.test"
OPERATOR = "operator.siak@sapa.test"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def accesses(c: Container, **kw: Any) -> list[AccessRecord]:
    return c.store.accesses(EPOCH, c.clock.now() + timedelta(days=1), **kw)


def rejected(flow: Flow) -> Case:
    case = flow.to("form_submitted")
    return flow.act(case, LOKET, "reject", reason="Data tidak sesuai")


# ---- who may ----------------------------------------------------------------------------------


def test_every_admin_page_is_403_for_other_roles_with_the_reason_and_changes_nothing(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    before = snapshot(container, case.id)
    files = blob_files(container)
    loket = login(LOKET)
    answers = [
        loket.client.get("/admin/subject"),
        loket.client.get("/admin/breach.csv?since=2026-11-01"),
        loket.post("/admin/subject", nik=NIK),
        loket.post("/admin/subject/export.zip", nik=NIK),
        loket.post(f"/admin/cases/{case.id}/correct", field="name", value="X", reason="r"),
        loket.post(f"/admin/cases/{case.id}/erase", reason="r"),
    ]
    for resp in answers:
        assert resp.status_code == 403
        assert subject.ADMIN_ONLY in resp.get_data(as_text=True)
    assert snapshot(container, case.id) == before
    assert blob_files(container) == files
    assert accesses(container) == []


def test_admin_posts_without_a_valid_csrf_token_are_403_and_change_nothing(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    before = snapshot(container, case.id)
    files = blob_files(container)
    admin = login(ADMIN)
    for path, form in [
        ("/admin/subject", {"nik": NIK}),
        ("/admin/subject/export.zip", {"nik": NIK}),
        (f"/admin/cases/{case.id}/correct", {"field": "name", "value": "X", "reason": "r"}),
        (f"/admin/cases/{case.id}/erase", {"reason": "r"}),
    ]:
        missing = admin.post(path, csrf=False, **form)
        forged = admin.client.post(path, data={**form, "csrf": "not-it"}, headers=JSON)
        for resp in (missing, forged):
            assert resp.status_code == 403
            assert resp.get_json()["message"].startswith("Sesi formulir sudah berakhir")
    assert snapshot(container, case.id) == before
    assert blob_files(container) == files
    assert accesses(container) == []


# ---- search and export ------------------------------------------------------------------------


def test_search_finds_the_cases_and_records_it_and_bad_input_is_400(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    admin = login(ADMIN)
    found = admin.post("/admin/subject", nik=NIK)
    assert found.status_code == 200
    body = found.get_json()
    assert body["subject"] == "7306********0001"
    assert [r["reg_no"] for r in body["cases"]] == [case.reg_no]
    assert body["cases"][0]["fields"] == [
        "name",
        "nik",
        "kk",
        "birth_date",
        "desa",
        "address",
        "wa_number",
    ]
    assert [(r.case_id, r.what) for r in accesses(container)] == [(case.id, "subject_search")]
    for form, message in [
        ({"nik": NIK, "wa": WA_ID}, subject.SUBJECT_ONE),
        ({}, subject.SUBJECT_ONE),
        ({"nik": "7306"}, "NIK harus terdiri dari 16 angka."),
    ]:
        resp = admin.post("/admin/subject", **form)
        assert resp.status_code == 400
        assert resp.get_json()["message"] == message
    assert len(accesses(container)) == 1


def test_the_search_page_shows_results_and_keeps_the_nik_out_of_every_url(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    admin = login(ADMIN)
    home = admin.client.get("/admin")
    assert home.status_code == 303 and home.headers["Location"].endswith("/admin/subject")
    form = admin.client.get("/admin/subject")
    assert form.status_code == 200
    assert "Permintaan subjek data" in form.get_data(as_text=True)
    page = admin.post("/admin/subject", json=False, nik=NIK)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert case.reg_no in html and "Unduh seluruh data" in html and "Koreksi data" in html
    assert "Hapus data pribadi" in html
    assert 'action="/admin/subject/export.zip"' in html
    assert f"?nik={NIK}" not in html and f"/{NIK}" not in html


def test_export_zip_is_complete_and_recorded(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    admin = login(ADMIN)
    resp = admin.post("/admin/subject/export.zip", json=False, wa="0812 3456 7890")
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="data-subjek-')
    assert resp.headers["Cache-Control"] == "no-store"
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    names = set(zf.namelist())
    assert {"index.json", "RINGKASAN.txt", f"kasus/{case.reg_no}/data.json"} <= names
    stored = container.store.get(case.id)
    docs = [n for n in names if n.startswith(f"kasus/{case.reg_no}/dokumen/")]
    assert len(docs) == len(stored.documents) >= 2
    assert sorted(zf.read(n) for n in docs) == sorted(
        container.blobs.get(d.key) for d in stored.documents
    )
    assert json.loads(zf.read(f"kasus/{case.reg_no}/data.json"))["form"]["nik"] == NIK
    assert [r.what for r in accesses(container, case_id=case.id)] == ["subject_export"]
    assert container.store.events(case.id)[-1].event == "subject_export"
    unknown = admin.post("/admin/subject/export.zip", nik="7306080101010003")
    assert unknown.status_code == 404
    assert unknown.get_json()["message"] == subject.NO_CASES


# ---- correction and erasure -------------------------------------------------------------------


def test_correction_through_the_page_and_bad_input_changes_nothing(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    admin = login(ADMIN)
    before = snapshot(container, case.id)
    for form, message in [
        ({"field": "name", "value": "Andi Basri", "reason": ""}, subject.REASON_REQUIRED),
        ({"field": "nik", "value": "12", "reason": "r"}, "NIK harus terdiri dari 16 angka."),
        ({"field": "consent", "value": "0", "reason": "r"}, "Kolom 'consent' tidak dapat"),
    ]:
        resp = admin.post(f"/admin/cases/{case.id}/correct", **form)
        assert resp.status_code == 400
        assert resp.get_json()["message"].startswith(message)
    assert snapshot(container, case.id) == before
    missing = admin.post("/admin/cases/nope/correct", field="name", value="A", reason="r")
    assert missing.status_code == 404
    ok = admin.post(
        f"/admin/cases/{case.id}/correct",
        json=False,
        field="name",
        value="Andi Basri",
        reason="salah ketik nama",
    )
    assert ok.status_code == 303
    assert ok.headers["Location"].endswith(f"/cases/{case.id}")
    assert container.store.get(case.id).form["name"] == "Andi Basri"
    event = container.store.events(case.id)[-1]
    assert (event.event, event.actor_id) == ("data_corrected", ADMIN)
    assert event.detail["old"] == "A*** B***" and event.detail["reason"] == "salah ketik nama"


def test_erasure_through_the_page_removes_blobs_and_redacts_messages(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    open_case = flow.to("form_submitted", wa_id="6285211112222")
    keys = [d.key for d in container.store.get(case.id).documents]
    admin = login(ADMIN)
    refused = admin.post(f"/admin/cases/{open_case.id}/erase", reason="permintaan")
    assert refused.status_code == 409
    assert "masih berjalan" in refused.get_json()["message"]
    no_reason = admin.post(f"/admin/cases/{case.id}/erase", reason="")
    assert no_reason.status_code == 400
    assert all(container.blobs.exists(k) for k in keys)
    done = admin.post(f"/admin/cases/{case.id}/erase", reason="permintaan pemohon")
    assert done.status_code == 200 and done.get_json() == {"ok": True, "case_id": case.id}
    assert not any(container.blobs.exists(k) for k in keys)
    messages = container.store.messages(case.id)
    assert messages and all(m.body.startswith("[dihapus") for m in messages)
    assert container.store.get(case.id).form["nik"] == "7306********0001"
    erased = [e for e in container.store.events(case.id) if e.event == "erasure"]
    assert [(e.actor_id, e.detail) for e in erased] == [(ADMIN, {"reason": "permintaan pemohon"})]


# ---- the access log of ordinary reads -----------------------------------------------------------


def test_reading_a_case_page_a_document_and_the_handoff_is_logged(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("forwarded")

    handoff.siak_handoff(container, {"case_id": case.id})
    assert container.store.get(case.id).handoff is not None
    loket, operator = login(LOKET), login(OPERATOR)
    assert loket.client.get(f"/cases/{case.id}").status_code == 200
    assert loket.client.get(f"/cases/{case.id}/documents/1").status_code == 200
    assert operator.client.get(f"/cases/{case.id}/handoff").status_code == 200
    # a refused read (another kecamatan's officer, a missing document) is no read
    assert login("loket.bontonompo@sapa.test").client.get(f"/cases/{case.id}").status_code == 403
    assert loket.client.get(f"/cases/{case.id}/documents/99").status_code == 404
    rows = accesses(container, case_id=case.id)
    assert [(r.actor_id, r.what) for r in rows] == [
        (LOKET, "case"),
        (LOKET, "document:1"),
        (OPERATOR, "handoff"),
    ]
    assert rows[0].role == "loket" and rows[0].reg_no == case.reg_no
    assert rows[0].client  # hashed, never the address
    assert rows[0].client != "127.0.0.1"


class LogDown:
    def __init__(self, inner: CaseStore) -> None:
        self.inner = inner

    def log_access(self, record: AccessRecord) -> None:
        raise TransientError("access log unavailable (test)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_without_the_access_log_no_document_is_served(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    loket = login(LOKET)
    container.store = LogDown(container.store)  # type: ignore[assignment,misc]
    doc = loket.client.get(f"/cases/{case.id}/documents/0")
    page = loket.client.get(f"/cases/{case.id}", headers=JSON)
    for resp in (doc, page):
        assert resp.status_code == 503
        assert access.LOG_UNAVAILABLE in resp.get_data(as_text=True)
    assert not doc.data.startswith(b"\x89PNG") and b"%PDF" not in doc.data


# ---- breach report ----------------------------------------------------------------------------


def test_breach_report_page_and_csv_name_records_not_people(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = rejected(flow)
    loket = login(LOKET)
    assert loket.client.get(f"/cases/{case.id}").status_code == 200
    admin = login(ADMIN)
    form = admin.client.get("/admin/breach")
    assert form.status_code == 200 and "Laporan akses" in form.get_data(as_text=True)
    since = (container.clock.now() - timedelta(hours=1)).isoformat()
    until = (container.clock.now() + timedelta(hours=1)).isoformat()
    query = {"since": since, "until": until}
    csv = admin.client.get("/admin/breach.csv", query_string=query)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(access.CSV_HEADER)
    assert f"akses,{case.id},{case.reg_no},case,{LOKET},loket" in text
    assert f"perubahan,{case.id},{case.reg_no},reject,{LOKET},loket" in text
    for secret in (NIK, WA_ID, "Andi"):
        assert secret not in text
    # without an end the window reaches the present second (the reads just made count)
    to_now = admin.client.get("/admin/breach.csv", query_string={"since": since})
    assert to_now.get_data(as_text=True) == text
    html = admin.client.get("/admin/breach", query_string=query).get_data(as_text=True)
    assert case.reg_no in html and "1 permohonan" in html
    bad = admin.client.get("/admin/breach.csv", query_string={"since": "kemarin"}, headers=JSON)
    assert bad.status_code == 400 and bad.get_json()["message"] == access.TIME_INVALID
    for early in ({"since": "0001-01-01", "until": "0001-01-02"}, {"since": "1999-12-31"}):
        resp = admin.client.get("/admin/breach.csv", query_string=early, headers=JSON)
        assert resp.status_code == 400 and resp.get_json()["message"] == access.TIME_INVALID
    backwards = admin.client.get(
        "/admin/breach.csv", query_string={"since": until, "until": since}, headers=JSON
    )
    assert backwards.status_code == 400
    assert backwards.get_json()["message"] == access.WINDOW_INVALID


def test_a_breach_report_that_would_be_cut_short_is_refused(
    container: Container, login: Callable[[str], Officer], flow: Flow, monkeypatch: Any
) -> None:
    case = rejected(flow)
    assert login(LOKET).client.get(f"/cases/{case.id}").status_code == 200
    monkeypatch.setattr(access, "REPORT_LIMIT", 1)
    since = (container.clock.now() - timedelta(hours=1)).isoformat()
    resp = login(ADMIN).client.get("/admin/breach.csv", query_string={"since": since}, headers=JSON)
    assert resp.status_code == 400
    assert "persempit rentang waktunya" in resp.get_json()["message"]
