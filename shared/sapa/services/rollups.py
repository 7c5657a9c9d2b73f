"""Rebuilding the rollups from the cases (`sapa rollup-rebuild`): every case of a period counted
again from nothing on today's SOP and clocks, compared with what the rollup cells hold, and
(unless only checking) each case's ledger replaced and the cells put right."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import ConcurrentUpdate, NotFound
from sapa.domain.rollup import PARTS, CellKey, Changes, counters, difference, total
from sapa.ports import CaseStore

PAGE = 500


@dataclass
class Rebuild:
    """What a rebuild found (and did)."""

    first: date
    last: date
    cases: int = 0  # cases read (every case updated since the period began)
    cells: int = 0  # cells in the period, stored or recomputed
    # recomputed − stored, per cell of the period whose counters differ
    differences: Changes = field(default_factory=dict)
    recounted: int = 0  # ledgers replaced (0 when only checking)
    corrected: int = 0  # cells corrected beyond what the recounted ledgers explained

    @property
    def clean(self) -> bool:
        return not self.differences


def cases_since(
    store: CaseStore,
    since: datetime | None,
    page: int = PAGE,
    *,
    states: list[str] | None = None,
) -> Iterator[Case]:
    """Every case updated at or after `since` (in `states`, if given), each once, oldest
    update first (a page at a time; a run of equal update times longer than a page is read
    with a larger page)."""
    seen: set[str] = set()
    limit = page
    while True:
        batch = store.list_cases(states=states, updated_since=since, limit=limit)
        fresh = [k for k in batch if k.id not in seen]
        for case in fresh:
            seen.add(case.id)
            yield case
        if len(batch) < limit:
            return
        if fresh:
            since = batch[-1].updated_at
        else:
            limit *= 2


def _in_period(changes: Changes, first: date, last: date) -> Changes:
    a, b = first.isoformat(), last.isoformat()
    return {k: v for k, v in changes.items() if a <= k.day <= b}


def _stored(c: Container, first: date, last: date) -> Changes:
    out: Changes = {}
    for part in PARTS:
        for cell in c.store.rollups(part, first, last):
            out[cell.key] = dict(cell.counters)
    return out


def rebuild(c: Container, first: date, last: date, *, check_only: bool = False) -> Rebuild:
    """Count every case that touched the period's cells again (those opened in it, and those
    with a run finished in it: all were updated since it began) and compare the period's cells
    with the sum. Unless `check_only`, replace each case's ledger (`CaseStore.recount`, under
    its version check) and add to the cells what no ledger explains.

    While officers work the counts move: run it when the office is closed, or again, until it
    reports no difference."""
    tracker = c.rollup_tracker()
    since = datetime.combine(first, time(0), tzinfo=ZoneInfo(c.region.timezone)).astimezone(UTC)
    report = Rebuild(first, last)
    expected: list[Changes] = []
    ids: list[str] = []
    for case in cases_since(c.store, since):
        report.cases += 1
        ids.append(case.id)
        expected.append(_in_period(counters(tracker.ledger(case)), first, last))
    want = total(expected)
    stored = _stored(c, first, last)
    report.cells = len(want.keys() | stored.keys())
    report.differences = difference(stored, want)
    if check_only:
        return report
    recounted: list[Changes] = []
    for case_id in ids:
        try:
            ledger = c.store.recount(case_id)
        except NotFound:  # gone meanwhile (never, today: cases are not deleted)
            continue
        except ConcurrentUpdate:
            continue  # too busy now; a later run counts it
        report.recounted += 1
        recounted.append(_in_period(counters(ledger), first, last))
    residual = difference(_stored(c, first, last), total(recounted))
    if residual:
        c.store.adjust_rollups(residual)
    report.corrected = len(residual)
    return report


def describe(key: CellKey) -> str:
    return f"{key.part} {key.day} kecamatan {key.kecamatan} layanan {key.service}"
