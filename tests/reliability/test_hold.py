"""The hold that keeps a WhatsApp send or a signature to one caller at a time (services.unit)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from sapa.services.unit import hold, release


def container(tmp_path: Path) -> Any:
    clock = FixedClock()
    return SimpleNamespace(store=SqliteCaseStore(tmp_path / "sapa.db"), clock=clock)


def test_one_holder_at_a_time_until_released_or_expired(tmp_path: Path) -> None:
    c = container(tmp_path)
    # GIVEN one caller holds the right to send message m
    first = hold(c, "out:m", 30)
    assert first is not None
    # THEN a second caller does not get it, while the first holds it
    assert hold(c, "out:m", 30) is None
    c.clock.advance(29)
    assert hold(c, "out:m", 30) is None
    # AND another message is independent
    assert hold(c, "out:other", 30) is not None
    # WHEN the first holder gives it back (its send failed), the next caller gets it at once
    release(c, first)
    second = hold(c, "out:m", 30)
    assert second is not None and second != first
    # AND when a holder dies (no release), the hold passes on once its time is up
    assert hold(c, "out:m", 30) is None
    c.clock.advance(31)
    assert hold(c, "out:m", 30) is not None


def test_callers_racing_for_a_hold_get_it_once(tmp_path: Path) -> None:
    c = container(tmp_path)
    won: list[str] = []
    start = threading.Barrier(8)

    def race() -> None:
        start.wait()
        name = hold(c, "sign-doc", 30)
        if name is not None:
            won.append(name)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
