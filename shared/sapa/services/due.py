"""How the sweeps find their work: the cases whose due time has come (`sapa.domain.agenda`),
the claims an officer holds, and the due times put right after the configuration they depend
on changed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import ConcurrentUpdate, NotFound
from sapa.ports import CaseStore, DueCase
from sapa.services.rollups import cases_since

log = logging.getLogger(__name__)

# How long one pass of a sweep spends putting due times right after a change of configuration
# (a third of the SLA sweep function's 300 s); the next pass goes on from where it stopped
# (the progress is kept in the store). Locally, about 1,000 cases a second.
REFRESH_SECONDS = 100.0
CLAIM_PAGE = 500


def each_due(store: CaseStore, kind: str, now: datetime, page: int) -> Iterator[DueCase]:
    """Every case whose `kind` due time is at or before `now`, earliest first, a page at a
    time; each once (a case whose due time stays past after it was dealt with is not read
    again in the same pass)."""
    after: tuple[datetime, str] | None = None
    while True:
        batch = store.due_cases(kind, now, limit=page, after=after)
        yield from batch
        if len(batch) < page:
            return
        after = (batch[-1].at, batch[-1].case.id)


def claims_of(store: CaseStore, email: str, page: int = CLAIM_PAGE) -> Iterator[Case]:
    """Every open case whose waiting step `email` holds (the store's claim index), by page."""
    after: str | None = None
    while True:
        batch = store.claimed_by(email, limit=page, after=after)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].id


def refresh(
    c: Container,
    kind: str,
    fingerprint: str,
    states: Iterable[str],
    *,
    budget: float = REFRESH_SECONDS,
) -> bool:
    """Put right the due times of the cases in `states` if the configuration named by
    `fingerprint` is not the one they were computed with (`CaseStore.recount`, case by case,
    under each case's version check); True once they all are. About `budget` seconds per
    call, and always some progress: it is kept under the key `agenda:<kind>` (the update
    time reached), the next call goes on from there."""
    key = f"agenda:{kind}"
    held = c.store.get_key(key) or {}
    if held.get("fingerprint") != fingerprint:
        held = {}  # progress on another configuration: start over
    if held.get("done"):
        return True
    since = datetime.fromisoformat(str(held["since"])) if held.get("since") else None
    done = 0
    last = since
    stop = time.monotonic() + budget
    for case in cases_since(c.store, since, states=sorted(states)):
        # Stop only past the moment it resumed at (those cases are done again: the moment is
        # shared), and never between cases updated at the same moment.
        if (
            last is not None
            and (since is None or last > since)
            and case.updated_at != last
            and time.monotonic() >= stop
        ):
            c.store.put_key(
                key, {"fingerprint": fingerprint, "since": last.isoformat(), "done": False}
            )
            log.info("due times being put right", extra={"kind": kind, "cases": done})
            return False
        # a case saved meanwhile had its due times computed on this configuration
        with contextlib.suppress(NotFound, ConcurrentUpdate):
            c.store.recount(case.id)
        done += 1
        last = case.updated_at
    c.store.put_key(key, {"fingerprint": fingerprint, "done": True})
    if done:
        log.info("due times put right", extra={"kind": kind, "cases": done})
    return True
