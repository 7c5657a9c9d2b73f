"""Start-up recovery: tasks decided but perhaps never queued (a crash between save and enqueue)."""

from __future__ import annotations

from sapa.bootstrap import Container
from sapa.services.unit import flush_outbox


def requeue_outboxes(c: Container) -> int:
    """Enqueue every case outbox again; names dedupe what already went out. Returns how many
    tasks were offered to the queue."""
    count = 0
    for case in c.store.with_outbox(limit=10_000):
        flush_outbox(c, case)
        count += len(case.outbox)
    return count
