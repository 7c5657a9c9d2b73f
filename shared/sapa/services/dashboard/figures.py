"""What the dashboard shows, as data: the figures per step, kecamatan or service, officer and
ISO week, and the whole `Dashboard`. `sapa.services.dashboard.stats` computes them from the
cases; the tables, charts, downloads and the monthly PDF only read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sapa.services.dashboard.filters import Filters


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class StepStat:
    number: int
    key: str
    kegiatan: str
    role: str
    mutu_baku_seconds: float
    handled: int  # sample size of the handling figures
    median_handling: float | None
    p90_handling: float | None
    within: int
    waited: int  # sample size of the waiting figure
    median_waiting: float | None
    # wall-clock handling, shown besides when some runs are measured on working hours
    median_raw_handling: float | None = None
    p90_raw_handling: float | None = None

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.handled)


@dataclass(frozen=True)
class GroupStat:
    """One kecamatan or one service."""

    code: str
    name: str
    volume: int
    delivered: int
    median_lead_time: float | None  # over the delivered cases
    backlog: int
    officer_runs: int
    within: int

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)


@dataclass(frozen=True)
class OfficerStat:
    officer: str
    name: str
    roles: str
    handled: int
    within: int
    median_handling_ratio: float | None  # handling as a multiple of the step's mutu baku

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.handled)


@dataclass(frozen=True)
class WeekStat:
    week: str  # ISO week, e.g. 2026-W40
    monday: date
    volume: int
    officer_runs: int
    within: int
    median_lead_time: float | None

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)


@dataclass(frozen=True)
class Dashboard:
    filters: Filters
    generated_at: datetime
    cases: int
    delivered: int
    open: int
    rejected: int
    cancelled: int
    expired: int
    officer_runs: int
    within: int
    median_lead_time: float | None
    lead_time_target_seconds: float
    within_lead_time_target: int
    steps: tuple[StepStat, ...]
    kecamatan: tuple[GroupStat, ...]
    services: tuple[GroupStat, ...]
    officers: tuple[OfficerStat, ...]
    weeks: tuple[WeekStat, ...]
    working_hours: bool = False  # some steps are measured on the office's working hours
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def compliance(self) -> float | None:
        return share(self.within, self.officer_runs)

    @property
    def lead_time_compliance(self) -> float | None:
        return share(self.within_lead_time_target, self.delivered)
