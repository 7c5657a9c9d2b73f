"""SOP step 8 with BSrE: the passphrase goes from the head of office to the signer and nowhere
else; a refused passphrase is shown on the case and signing can be asked again."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sapa.adapters.bsre_signer import BsreSigner
from sapa.adapters.clock import FixedClock
from sapa.adapters.pdf import verify_signature
from sapa.bootstrap import Container
from sapa.domain.errors import (
    IllegalTransition,
    PermanentError,
    TransientError,
    ValidationFailed,
)
from sapa.domain.texts import text
from sapa.services import signing, views
from sapa.services.sealed import SEAL_SECONDS
from tests.contract.bsre_fake import PASSPHRASE, FakeBsre
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner
from tests.services.test_pipeline import (
    KADIS,
    LOKET,
    act,
    to_approved,
)


@pytest.fixture
def bsre(container: Container) -> Iterator[FakeBsre]:
    with FakeBsre() as fake:
        container.settings = container.settings.model_copy(  # type: ignore[misc]
            update={"signer": "bsre"}
        )
        container.signer = BsreSigner(  # type: ignore[misc]
            fake.base_url, fake.username, fake.password, fake.nik, timeout=10
        )
        yield fake


def approved_case(c: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock) -> str:
    case_id = to_approved(c, runner, wa, clock)
    runner.drain()
    return case_id


def esign_tasks(c: Container) -> list:  # type: ignore[type-arg]
    return [t for t in c.queue.tasks if t.kind == "esign_request"]  # type: ignore[attr-defined]


def test_the_passphrase_reaches_bsre_sealed_and_the_signed_pdf_validates(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    # WHEN the head of office signs without a passphrase, nothing is asked of BSrE
    with pytest.raises(ValidationFailed):
        act(c, case_id, KADIS, "sign")
    assert esign_tasks(c) == [] and bsre.received == []
    # AND with it, the task carries the passphrase sealed, never in the clear
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    [task] = esign_tasks(c)
    assert PASSPHRASE not in json.dumps(task.payload)
    assert "sealed_passphrase" in task.payload
    assert PASSPHRASE not in c.store.get(case_id).model_dump_json()
    runner.drain()
    # THEN BSrE got the right passphrase and the case is signed and delivered
    assert [r.passphrase_ok for r in bsre.received if r.api == "v1"] == [True]
    case = c.store.get(case_id)
    assert case.state == "delivered"
    report = verify_signature(c.blobs.get(case.signed.key), [bsre.ca_certificate_pem])  # type: ignore[union-attr]
    assert report.intact and report.trusted


def test_a_wrong_passphrase_is_recorded_and_signing_can_be_asked_again(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign", passphrase="salah-ketik")
    [task] = esign_tasks(c)
    with pytest.raises(PermanentError, match="Passphrase TTE salah"):
        signing.esign_request(c, task.payload)
    c.queue.tasks.clear()  # type: ignore[attr-defined]
    failed = [e for e in c.store.events(case_id) if e.event == "sign_failed"]
    assert len(failed) == 1 and "salah" in failed[0].detail["reason"]
    assert "salah-ketik" not in json.dumps([e.detail for e in c.store.events(case_id)])
    assert c.store.get(case_id).state == "approved"
    # WHEN the head of office tries again with the right passphrase, a new task runs
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    runner.drain()
    assert c.store.get(case_id).state == "delivered"


def test_wrong_passphrases_are_counted_for_the_day_and_shown_before_the_next_try(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    # GIVEN BSrE answers a wrong passphrase the v2 way (a Spring 500) — it must not be retried
    c.signer = BsreSigner(  # type: ignore[misc]
        bsre.base_url, bsre.username, bsre.password, bsre.nik, api="v2", timeout=10
    )
    for attempt in (1, 2):
        act(c, case_id, KADIS, "sign", passphrase=f"salah-{attempt}")
        [task] = esign_tasks(c)
        c.queue.tasks.clear()  # type: ignore[attr-defined]
        with pytest.raises(PermanentError, match="Passphrase TTE salah"):
            signing.esign_request(c, task.payload, task.name or "")
    # THEN BSrE was asked twice in all (no retry), and the kadis' form says so
    assert len([r for r in bsre.received if r.api == "v2"]) == 2
    assert signing.passphrase_failures_today(c) == 2
    state = views.signing_state(c, c.store.events(case_id))
    assert state["passphrase_failures"] == 2
    assert state["warning"] == text("passphrase_failures", count=2)
    assert "Passphrase TTE salah" in state["failure"]
    failed = [e for e in c.store.events(case_id) if e.event == "sign_failed"]
    assert [e.detail["passphrase_failures_today"] for e in failed] == [1, 2]
    # AND the next day starts from nothing
    clock.advance(24 * 3600)
    assert signing.passphrase_failures_today(c) == 0


def test_an_unrecognised_refusal_is_retried_once_then_shown_with_bsres_words(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    bsre.mode = "unrecognised"
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    [task] = esign_tasks(c)
    with pytest.raises(TransientError):
        signing.esign_request(c, task.payload, task.name or "")  # the queue retries once
    with pytest.raises(PermanentError) as second:
        signing.esign_request(c, task.payload, task.name or "")
    assert "kesalahan pada sistem penandatanganan" in second.value.message
    assert len([r for r in bsre.received if r.api == "v1"]) == 2
    failed = [e for e in c.store.events(case_id) if e.event == "sign_failed"]
    assert len(failed) == 1 and "kesalahan pada sistem" in failed[0].detail["reason"]
    assert PASSPHRASE not in json.dumps([e.detail for e in c.store.events(case_id)])


def test_a_certificate_not_issued_is_shown_and_nothing_is_sent(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    bsre.user_status = "EXPIRED"
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    [task] = esign_tasks(c)
    with pytest.raises(PermanentError, match="kedaluwarsa"):
        signing.esign_request(c, task.payload, task.name or "")
    assert [r.api for r in bsre.received] == ["status"]
    assert c.store.get(case_id).state == "approved"


def test_a_sealed_passphrase_expires(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    bsre: FakeBsre,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = container
    case_id = approved_case(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    [task] = esign_tasks(c)
    # Fernet checks its TTL against the real time: move time itself forward past the seal.
    import time as real_time

    later = real_time.time() + SEAL_SECONDS + 60
    monkeypatch.setattr("cryptography.fernet.time.time", lambda: later)
    with pytest.raises(PermanentError, match="kedaluwarsa"):
        signing.esign_request(c, task.payload)
    assert bsre.received == []  # BSrE was never asked


def test_the_durable_queue_never_holds_the_passphrase_in_the_clear(
    tmp_path: Path,
    bsre: FakeBsre,
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
) -> None:
    from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue

    c = container
    case_id = approved_case(c, runner, wa, clock)
    queue = SqliteTaskQueue(tmp_path / "tasks.db")
    c.queue = queue  # type: ignore[misc]
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("tasks.db*"))
    assert queue.pending() == 1
    assert PASSPHRASE.encode() not in raw
    with sqlite3.connect(tmp_path / "tasks.db") as db:
        payloads = [r[0] for r in db.execute("SELECT payload FROM tasks")]
    assert payloads and all(PASSPHRASE not in p for p in payloads)


def test_a_revoked_document_shows_as_revoked_on_the_public_page(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock, bsre: FakeBsre
) -> None:
    from sapa.services import signing

    c = container
    case_id = approved_case(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign", passphrase=PASSPHRASE)
    runner.drain()
    case = c.store.get(case_id)
    doc_id = signing.document_id(case)
    assert signing.verification(c, doc_id).status == "valid"
    # a loket officer may not revoke; the head of office may, with a reason
    with pytest.raises(IllegalTransition):
        act(c, case_id, LOKET, "revoke_document", reason="salah cetak")
    with pytest.raises(ValidationFailed):
        act(c, case_id, KADIS, "revoke_document", reason=" ")
    act(c, case_id, KADIS, "revoke_document", reason="Data kepala keluarga keliru")
    assert signing.verification(c, doc_id).status == "revoked"
    assert [e.event for e in c.store.events(case_id)].count("revoke_document") == 1
