"""SLA arithmetic: handling time against the mutu baku, waiting time, and lead time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sapa.domain.case import Case, StepRun
from sapa.domain.sop import Sop, Step


@dataclass(frozen=True)
class StepTiming:
    """The numbers of one step run. Seconds; None where the run has not got that far."""

    step: Step
    run: StepRun
    waiting_seconds: float | None  # ready → claimed (or → now while unclaimed)
    handling_seconds: float | None  # claimed → done (or → now while open)
    mutu_baku_seconds: float
    done: bool

    @property
    def breached(self) -> bool:
        return self.handling_seconds is not None and self.handling_seconds > self.mutu_baku_seconds

    @property
    def ratio(self) -> float | None:
        """Handling time as a multiple of the mutu baku (1.0 = exactly on standard)."""
        if self.handling_seconds is None or not self.mutu_baku_seconds:
            return None
        return self.handling_seconds / self.mutu_baku_seconds


@dataclass(frozen=True)
class Timeline:
    steps: tuple[StepTiming, ...]
    lead_time_seconds: float
    lead_time_target_seconds: float
    standard_total_seconds: float
    finished: bool

    @property
    def breaches(self) -> tuple[StepTiming, ...]:
        return tuple(s for s in self.steps if s.breached)

    @property
    def lead_time_breached(self) -> bool:
        return self.lead_time_seconds > self.lead_time_target_seconds


def _seconds(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds(), 0.0)


def step_timing(sop: Sop, run: StepRun, now: datetime) -> StepTiming:
    step = sop.step(run.step)
    end = run.done_at or now
    if run.claimed_at is not None:
        waiting: float | None = _seconds(run.ready_at, run.claimed_at)
        handling: float | None = _seconds(run.claimed_at, end)
    else:
        waiting, handling = _seconds(run.ready_at, end), None
    return StepTiming(step, run, waiting, handling, step.mutu_baku_seconds, run.done_at is not None)


def timeline(sop: Sop, case: Case, now: datetime) -> Timeline:
    """Every step run of the case in order, and the lead time from greeting to the end.

    The lead time stops at delivery (or at the case's closing for rejected/cancelled/expired
    cases); an open case's lead time runs until `now`.
    """
    runs = sorted(case.steps, key=lambda r: (r.ready_at, sop.step(r.step).number))
    finished = not case.is_open(sop)
    end = (case.closed_at or case.updated_at) if finished else now
    return Timeline(
        steps=tuple(step_timing(sop, r, now) for r in runs),
        lead_time_seconds=_seconds(case.created_at, end),
        lead_time_target_seconds=sop.lead_time_target_seconds,
        standard_total_seconds=sop.standard_total_seconds,
        finished=finished,
    )


def format_duration(seconds: float | None) -> str:
    """'1 j 02 m 05 d' style, short enough for a worklist column; '-' when unknown."""
    if seconds is None:
        return "-"
    tenths = round(seconds, 1)
    if tenths < 10 and tenths != int(tenths):
        # Sub-second work (the system's own steps) shows its tenths, with the Indonesian comma.
        return f"{tenths:.1f} d".replace(".", ",")
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} j {m:02d} m {sec:02d} d"
    if m:
        return f"{m} m {sec:02d} d"
    return f"{sec} d"
