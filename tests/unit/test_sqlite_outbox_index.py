"""The embedded store finds cases with tasks still in their outbox by an indexed column (recovery
looks every minute), including in a database written before the column existed."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from sapa.domain.case import Case
from sapa.domain.sop import default_sop

SOP = default_sop()
AT = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def new_case(*, outbox: bool) -> Case:
    case_id = str(uuid.uuid4())
    case = Case.open(
        SOP,
        case_id=case_id,
        reg_no=f"REG-{case_id[:8]}",
        kecamatan="730608",
        phone_number_id="demo-730608",
        wa_id=f"62812{uuid.uuid4().int % 10**8:08d}",
        applicant_name="Warga",
        at=AT,
    )
    if outbox:
        case.outbox.append({"kind": "notify", "payload": {"case_id": case_id}, "name": "n"})
    return case


def test_cases_with_an_outbox_are_found_and_leave_the_index_when_flushed(tmp_path: Path) -> None:
    store = SqliteCaseStore(tmp_path / "sapa.db")
    waiting, quiet = new_case(outbox=True), new_case(outbox=False)
    store.create(waiting)
    store.create(quiet)
    assert [k.id for k in store.with_outbox()] == [waiting.id]
    waiting.outbox.clear()
    store.save(waiting)
    assert store.with_outbox() == []


def test_a_database_from_before_the_column_is_indexed_on_opening(tmp_path: Path) -> None:
    path = tmp_path / "sapa.db"
    store = SqliteCaseStore(path)
    waiting = new_case(outbox=True)
    store.create(waiting)
    store.create(new_case(outbox=False))
    store.db.close()
    # GIVEN the same data as an older version of SAPA left it: no has_outbox column
    raw = sqlite3.connect(path)
    raw.execute("DROP INDEX cases_has_outbox")
    raw.execute("ALTER TABLE cases DROP COLUMN has_outbox")
    raw.commit()
    raw.close()
    # WHEN this version opens it, THEN the case whose outbox holds a task is found
    assert [k.id for k in SqliteCaseStore(path).with_outbox()] == [waiting.id]
