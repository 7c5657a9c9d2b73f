"""The transaction boundary for one case: read-modify-write with a version check and an outbox."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.errors import ConcurrentUpdate, TransientError
from sapa.ports import Task

T = TypeVar("T")
log = logging.getLogger(__name__)

_RETRIES = 5


def outbox_task(
    case: Case,
    kind: str,
    payload: dict[str, Any],
    *,
    name: str,
    schedule_at: datetime | None = None,
) -> None:
    """Decide a task as part of the current change to `case`; it is enqueued after the save."""
    entry: dict[str, Any] = {"kind": kind, "payload": payload, "name": name}
    if schedule_at is not None:
        entry["schedule_at"] = schedule_at.isoformat()
    case.outbox.append(entry)


def flush_outbox(c: Container, case: Case) -> None:
    """Enqueue the case's outbox. Names are deterministic, so a repeat is deduped by the queue."""
    for entry in case.outbox:
        at = entry.get("schedule_at")
        c.queue.enqueue(
            Task(
                kind=entry["kind"],
                payload=entry["payload"],
                name=entry["name"],
                schedule_at=datetime.fromisoformat(at) if at else None,
            )
        )


def _try_flush(c: Container, case: Case) -> bool:
    try:
        flush_outbox(c, case)
    except TransientError:
        log.warning("queue unavailable; tasks stay in the case outbox", extra={"case_id": case.id})
        return False
    return True


def mutate(c: Container, case_id: str, change: Callable[[Case], T]) -> tuple[Case, T]:
    """Load the case, apply `change`, save with a version check, then enqueue its outbox.

    `change` may run more than once (on a concurrent update it is re-run on a fresh copy),
    so it must only touch the case. Tasks are saved in the case's outbox together with the
    change; if the queue is down after the save, they stay there and are enqueued by the next
    change of the case or by the recovery sweep (names dedupe any repeat). The change itself
    is never undone because the queue was unavailable.
    """
    for attempt in range(_RETRIES):
        case = c.store.get(case_id)
        carried = [] if not case.outbox or _try_flush(c, case) else list(case.outbox)
        case.outbox = []
        result = change(case)
        case.outbox = carried + case.outbox
        try:
            c.store.save(case)
        except ConcurrentUpdate:
            log.info("concurrent update, retrying", extra={"case_id": case_id, "attempt": attempt})
            continue
        if case.outbox and _try_flush(c, case):
            # Queued: clear the outbox so a later change does not offer the same tasks again
            # after the queue forgot their names. A concurrent writer clears it as well.
            case.outbox = []
            with contextlib.suppress(ConcurrentUpdate):
                c.store.save(case)
        return case, result
    raise ConcurrentUpdate("case is too busy, try again", case_id=case_id)


def hold(c: Container, key: str, seconds: float) -> str | None:
    """Take the right to make one call that cannot be repeated safely (a WhatsApp send, a
    signature) for `key`, for `seconds`: the hold's name, or None while another caller holds
    it. Queues deliver a task twice at once now and then (a replay, an expired lease), and
    both would pass a "not done yet" check; only one gets the hold. A holder that dies loses
    it when the time is up; one that fails gives it back with `release`.

    Built on create-if-absent keys: generation n of the hold is the key `<key>#n`, taken by
    whoever creates it first, and the next generation may be taken once n has expired or been
    released."""
    now = c.clock.now().timestamp()
    for n in range(10_000):
        name = f"hold-{key}#{n}"
        if c.store.claim_key(name, value={"until": now + seconds}):
            return name
        taken = c.store.get_key(name) or {}
        if float(taken.get("until", 0)) > now and c.store.get_key(f"{name}/released") is None:
            return None
    raise TransientError("too many attempts to take a hold", key=key)


def release(c: Container, name: str) -> None:
    """Give a hold back (its call failed and may be tried again at once)."""
    c.store.claim_key(f"{name}/released", value={"released": True})  # get_key sees a value
