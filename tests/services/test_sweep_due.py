"""The sweeps read only what is due (`sapa.domain.agenda`): a case's due time is exactly the
moment the SLA sweep first has something to record on it, a pass reads the due cases and no
other, page after page with no cap, and due times computed under an older configuration are
put right before they are relied on."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, generate_for, seed_store
from sapa.domain.case import Case
from sapa.services import due, retention, sla_sweep

US = timedelta(microseconds=1)
# Mid-October 2026: the seeded month is half done, many cases are open and waiting.
NOW = datetime(2026, 10, 16, 3, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


class Counting:
    """The store, counting the cases each of its methods hands out."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.read: Counter[str] = Counter()
        self.recounted: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            out = found(*args, **kwargs)
            if name == "recount":
                self.recounted.add(args[0])
            items = out if isinstance(out, list) else [out]
            for item in items:
                if isinstance(item, Case) or isinstance(getattr(item, "case", None), Case):
                    self.read[name] += 1
            return out

        return call


def counting(c: Container) -> Counting:
    spy = Counting(c.store)
    c.__dict__["store"] = spy  # the container's cached store, replaced for this test
    return spy


def test_a_cases_due_time_is_when_the_sweep_first_has_something_to_do(
    container: Container,
) -> None:
    # GIVEN a month of seeded cases on the office's working hours and holidays, as they stand
    # mid-month (no sweep has run: nothing is recorded on them)
    c = container
    cfg = sla_sweep.config_for(c)
    roster = c.store.staff_roster()
    agenda = c.agenda()
    cases = list(generate_for(c, SeedParams(date(2026, 10, 1), 400, 11, NOW)))
    checked = Counter[str]()
    for case in cases:
        due = agenda.sla_due(case)
        if not case.is_open(c.sop):
            assert due is None  # closed and no expiry notice owed
            continue
        assert due is not None  # an open case always has its lead time ahead of it
        work = case.model_copy(deep=True)
        while due is not None:
            # THEN a microsecond before its due time the sweep would record nothing
            before = sla_sweep._check(c, cfg, work.model_copy(deep=True), due - US, roster)
            assert not before, (work.state, due, work.sla_flags)
            # AND at its due time it records something; then the next due time follows
            at = sla_sweep._check(c, cfg, work, due, roster)
            assert at, (work.state, due, work.sla_flags)
            checked.update(at)
            due = agenda.sla_due(work) if work.is_open(c.sop) else None
    # the property was tried on every kind of thing the sweep records
    assert {"breaches", "escalations", "lead_time_breaches", "reminders", "expired"} <= set(checked)


def test_a_pass_reads_only_the_due_cases_however_many_are_open(
    container: Container, clock: FixedClock
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 300, 3, NOW))
    open_cases = c.store.list_cases(states=sorted(c.sop.states - c.sop.terminal_states))
    assert len(open_cases) > 20
    # GIVEN a first pass that records what a month without sweeps left due
    first = sla_sweep.sweep(c, page=7)  # small pages: every page is read, no cap
    assert first["breaches"] + first["lead_time_breaches"] > 0
    # WHEN the sweep runs again ten minutes later
    clock.advance(600)
    due_now = c.store.due_cases("sla", clock.now())
    assert len(due_now) < len(open_cases) / 4
    spy = counting(c)
    again = sla_sweep.sweep(c)
    # THEN it reads only the cases that came due meanwhile (and the officers' claims)
    assert spy.read["due_cases"] == len(due_now)
    assert spy.read["list_cases"] == 0
    assert sum(again.values()) >= len(due_now)
    # AND a pass at the same moment reads nothing due at all
    spy.read.clear()
    sla_sweep.sweep(c)
    assert spy.read["due_cases"] == 0


def test_every_due_case_is_swept_in_one_pass_page_after_page(
    container: Container, clock: FixedClock
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 300, 5, NOW))
    sla_sweep.sweep(c, page=3)
    # THEN nothing is left due after one pass, however small the pages
    left = c.store.due_cases("sla", clock.now())
    assert [d.case.state for d in left] == []


def test_due_times_from_an_older_configuration_are_put_right(
    container: Container, clock: FixedClock, tmp_path: Path
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 200, 9, NOW))
    sla_sweep.sweep(c)
    assert c.store.due_cases("sla", clock.now()) == []
    # GIVEN the office shortens the residents' guest-book wait to one hour then two days
    path = tmp_path / "sla.toml"
    path.write_text(
        '[residents.guestbook]\nstate = "link_sent"\nremind_after_hours = 1\n'
        "expire_after_days = 2\n",
        "utf-8",
    )
    c.settings = c.settings.model_copy(update={"sla_file": path})  # type: ignore[misc]
    waiting = c.store.list_cases(states=["link_sent"])
    assert waiting
    # WHEN the sweep runs three hours later
    clock.advance(3 * 3600)
    sla_sweep.sweep(c)
    # THEN the due times computed under the old settings (a reminder after 24 hours) did not
    # hide the new deadlines: every resident waiting is reminded, or their case expired
    for listed in waiting:
        case = c.store.get(listed.id)
        reminded = any(k.startswith("reminder:link_sent:") for k in case.sla_flags)
        assert case.state == "expired" or reminded


def test_retention_reads_only_the_cases_with_something_due(
    container: Container, clock: FixedClock
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 200, 4, NOW))
    closed = c.store.list_cases(states=sorted(c.sop.terminal_states), limit=1000)
    assert closed
    # GIVEN 100 days later: every closed case's documents are due (90 days)
    clock.advance(100 * 86400)
    spy = counting(c)
    done = retention.sweep(c)
    assert done["documents_deleted"] == 0  # seeded cases carry no documents
    assert spy.read["due_cases"] == len(closed)
    # WHEN it runs again the next day, nothing is due until the personal data's year
    spy.read.clear()
    clock.advance(86400)
    retention.sweep(c)
    assert spy.read["due_cases"] == 0
    assert spy.read["list_cases"] == 0


def test_putting_due_times_right_resumes_where_the_last_pass_stopped(
    container: Container, clock: FixedClock
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 120, 8, NOW))
    open_states = sorted(c.sop.states - c.sop.terminal_states)
    opened = len(c.store.list_cases(states=open_states, limit=1000))
    assert due.refresh(c, "sla", "first", open_states)
    # GIVEN a new configuration and passes with no time to spare: each does a little
    spy = counting(c)
    passes = 0
    while not due.refresh(c, "sla", "second", open_states, budget=0):
        passes += 1
        assert passes <= opened  # every pass gets further
    # THEN every open case was put right, and a finished refresh reads nothing again
    assert passes > 1
    assert len(spy.recounted) == opened
    spy.read.clear()
    assert due.refresh(c, "sla", "second", open_states)
    assert spy.read["list_cases"] == 0
