"""An attempt to sign that dies after storing the signed PDF but before saving the case: the
retry signs and completes the case, and the file the case never pointed at is deleted (one
signed PDF per document, as the crash test checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.services import signing
from tests.fakes import FakeWhatsApp
from tests.services.conftest import Runner
from tests.services.test_pipeline import KADIS, act, to_approved


class Crash(BaseException):
    """The process dying: nothing after this point runs, no handler sees it."""


def _signed_files(c: Container, case_id: str) -> list[Path]:
    root = Path(c.settings.sapa_data_dir) / "blobs" / "cases" / case_id / "signed"
    return sorted(root.glob("*.pdf"))


def test_a_signed_pdf_orphaned_by_a_crash_is_deleted_when_the_retry_completes(
    container: Container,
    runner: Runner,
    wa: FakeWhatsApp,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = container
    case_id = to_approved(c, runner, wa, clock)
    act(c, case_id, KADIS, "sign")
    queue: Any = c.queue
    (task,) = [t for t in queue.tasks if t.kind == "esign_request"]
    queue.tasks.remove(task)
    # GIVEN an attempt that dies after the signed PDF is stored, before the case is saved
    real = signing.mutate

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise Crash

    monkeypatch.setattr(signing, "mutate", dies)
    with pytest.raises(Crash):
        signing.esign_request(c, task.payload)
    monkeypatch.setattr(signing, "mutate", real)
    (orphan,) = _signed_files(c, case_id)
    assert c.store.get(case_id).signed is None
    # WHEN the task is retried once the dead attempt's hold is over
    clock.advance(signing.sign_hold_seconds(c) + 1)
    assert signing.esign_request(c, task.payload) == "signed"
    # THEN the case holds the new signature and it is the only signed file left
    case = c.store.get(case_id)
    assert case.state == "signed" and case.signed is not None
    (kept,) = _signed_files(c, case_id)
    assert kept != orphan and kept.as_posix().endswith(case.signed.key)
    # AND a replay changes nothing
    assert signing.esign_request(c, task.payload) == "already_signed"
    assert _signed_files(c, case_id) == [kept]
