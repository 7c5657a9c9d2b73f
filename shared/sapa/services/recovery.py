"""Start-up recovery: tasks decided but perhaps never queued (a crash between save and enqueue)."""

from __future__ import annotations

from sapa.bootstrap import Container
from sapa.services.unit import flush_outbox


def requeue_outboxes(c: Container) -> int:
    """Enqueue the outbox of every open case again; names dedupe what already went out."""
    open_states = [s for s in c.sop.states if s not in c.sop.terminal_states] + ["signed"]
    count = 0
    for case in c.store.list_cases(states=set(open_states), limit=100_000):
        if case.outbox:
            flush_outbox(c, case)
            count += len(case.outbox)
    return count
