"""Rollups kept as the work happens, through the services: every step run counted once whatever
repeats (a change re-run on a concurrent update, a replayed task, a refused repeat of a step),
and `sapa rollup-rebuild` finding and putting right what the cells hold wrongly."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sapa import cli
from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from sapa.adapters.pdf import simple_pdf
from sapa.bootstrap import Container
from sapa.dev.seed import SeedParams, seed_store
from sapa.domain.case import Actor, Case
from sapa.domain.errors import IllegalTransition
from sapa.domain.rollup import ALL, CASE, STEP, CellKey
from sapa.services import rollups
from sapa.services.unit import mutate
from tests.services.conftest import HANDLERS, FakeWhatsApp, Runner
from tests.services.test_pipeline import KABID, KADIS, LOKET, OPERATOR, VERIF, act, to_submitted


def today(c: Container) -> date:
    return c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date()


def day_cell(c: Container, part: str, kec: str = ALL, svc: str = ALL) -> dict[str, int]:
    d = today(c)
    found = c.store.rollups(part, d, d, kecamatan=kec, service=svc)
    return dict(found[0].counters) if found else {}


def consistent(c: Container) -> rollups.Rebuild:
    """The cells equal every case counted again from nothing (and nothing was changed)."""
    d = today(c)
    found = rollups.rebuild(c, d - timedelta(days=40), d + timedelta(days=1), check_only=True)
    assert found.clean, found.differences
    return found


def test_a_full_case_with_every_task_replayed_is_counted_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    # GIVEN a case taken through all eight steps and delivered
    case_id = to_submitted(c, runner, wa, clock)
    for staff, action in [(LOKET, "check"), (LOKET, "contact"), (VERIF, "forward")]:
        clock.advance(30)
        act(c, case_id, staff, "claim")
        clock.advance(40)
        act(c, case_id, staff, action)
    runner.drain()
    act(c, case_id, OPERATOR, "enter_siak", siak_ref="S", draft_pdf=simple_pdf("KK", ["1"]))
    act(c, case_id, KABID, "approve")
    act(c, case_id, KADIS, "sign")
    clock.advance(5)
    runner.drain()
    assert c.store.get(case_id).state == "delivered"
    consistent(c)
    before = {p: day_cell(c, p) for p in (CASE, STEP)}
    # WHEN every task that ran is delivered again (Cloud Tasks delivers at least once)
    for task in list(runner.done):
        HANDLERS[task.kind](c, task.payload, task.name or "")
    runner.drain()
    # THEN nothing is counted twice: one case, delivered, each step once
    assert {p: day_cell(c, p) for p in (CASE, STEP)} == before
    cases = day_cell(c, CASE)
    assert cases["cases"] == 1 and cases["end|delivered"] == 1 and cases["lead|n"] == 1
    steps = day_cell(c, STEP)
    for step in c.sop.steps:
        assert steps[f"s|{step.key}|h|n"] == 1, step.key
    assert cases["on"] == 6  # steps 3–8 by officers; the greeting and the link are not
    consistent(c)


def test_a_change_re_run_after_a_concurrent_update_is_counted_once(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    case_id = to_submitted(c, runner, wa, clock)
    officer = Actor(id=LOKET.email, role="loket", kecamatan=LOKET.kecamatan)
    runs: list[int] = []

    def check(case: Case) -> None:
        runs.append(case.version)
        if len(runs) == 1:
            # another writer saves the case between this read and this save
            mutate(c, case_id, lambda k: k.note(Actor.system(), "noted", clock.now()))
        case.claim(c.sop, officer, clock.now())
        case.apply(c.sop, "check", officer, clock.now() + timedelta(seconds=40))

    # WHEN the check's change meets a concurrent update and is run again on a fresh copy
    mutate(c, case_id, check)
    # THEN it ran twice, was saved once and is counted once
    assert len(runs) == 2 and runs[1] == runs[0] + 1
    assert day_cell(c, STEP)["s|periksa|h|n"] == 1
    assert day_cell(c, CASE)["on"] == 1
    # AND the same step asked again (a double click, a replayed form) is refused: no count
    with pytest.raises(IllegalTransition):
        act(c, case_id, LOKET, "check")
    assert day_cell(c, STEP)["s|periksa|h|n"] == 1
    consistent(c)


def test_a_service_chosen_after_the_greeting_takes_the_greeting_with_it(
    container: Container, runner: Runner, wa: FakeWhatsApp, clock: FixedClock
) -> None:
    c = container
    to_submitted(c, runner, wa, clock)
    service = c.store.list_cases(limit=1)[0].service
    assert service
    # the greeting was counted before any service was chosen; now all of it is the service's
    got = day_cell(c, STEP, "730608", service)
    assert got["s|sapa|h|n"] == 1 and got["s|kirim_tautan|h|n"] == 1
    assert day_cell(c, CASE, "730608", "-") == {}
    consistent(c)


# ---- sapa rollup-rebuild ---------------------------------------------------------------------


def run_cli(*args: str) -> int:
    return cli.main(["rollup-rebuild", *args])


def test_rebuild_finds_and_puts_right_what_the_cells_hold_wrongly(
    container: Container, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = container
    seed_store(c, SeedParams(date(2026, 10, 1), 120, 4, c.clock.now()))
    october = ("--from", "2026-10-01", "--to", "2026-10-31")
    assert run_cli("--check", *october) == 0
    assert ", 0 berbeda" in capsys.readouterr().out
    # GIVEN a cell changed by hand, and a case written by a store that kept no rollups (as
    # cases saved before rollups existed)
    wrong = CellKey(CASE, "2026-10-07", ALL, ALL)
    c.store.adjust_rollups({wrong: {"cases": 3}})
    stray = next(k for k in c.store.list_cases(limit=500) if k.state == "delivered")
    plain = SqliteCaseStore(c.settings.sapa_data_dir / "sapa.db")
    extra = stray.model_copy(deep=True)
    extra.id, extra.reg_no, extra.wa_id = "stray-1", "STRAY-1", "628000000001"
    for e in extra.new_events:
        e.case_id = extra.id
    plain.create(extra)
    # WHEN the rollups are checked
    assert run_cli("--check", *october) == 1
    out = capsys.readouterr().out
    # THEN both show, as differences of the recomputed from the stored counters
    assert "case 2026-10-07 kecamatan * layanan *: cases -3" in out
    opened = extra.created_at.astimezone(ZoneInfo(c.region.timezone)).date().isoformat()
    assert f"case {opened} kecamatan {extra.kecamatan} layanan {extra.service}: " in out
    # AND a rebuild puts them right, after which a check finds nothing
    assert run_cli(*october) == 0
    assert "diperbaiki" in capsys.readouterr().out
    assert run_cli("--check", *october) == 0
    assert ", 0 berbeda" in capsys.readouterr().out
    # AND the stray case now counts like any other: saved again, it adds nothing more
    before = c.store.rollups(CASE, date(2026, 10, 1), date(2026, 10, 31))
    c.store.save(c.store.get("stray-1"))
    assert c.store.rollups(CASE, date(2026, 10, 1), date(2026, 10, 31)) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-13-01"), "TTTT-BB-HH"),
        (("--from", "2026-10-05", "--to", "2026-10-01"), "tidak boleh sebelum"),
    ],
)
def test_rebuild_refuses_bad_dates(
    container: Container, args: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(*args) == 2
    assert message in capsys.readouterr().err
