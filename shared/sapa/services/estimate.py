"""The resident's STATUS answer: where the request is, and when it is expected to be done,
from the office's recent real step times laid onto its working hours."""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sapa.bootstrap import Container
from sapa.domain.case import Case
from sapa.domain.rollup import ALL, DONE, Distribution, distributions, merged
from sapa.domain.sla import EstimateConfig
from sapa.domain.sop import Sop, Step
from sapa.domain.texts import DAY_NAMES, MONTH_NAMES, ROLE_LABELS, STATE_LABELS, text

log = logging.getLogger(__name__)

ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}

KECAMATAN, EVERY, MUTU_BAKU = "kecamatan", "all", "mutu_baku"  # where a step's figure came from


def config_for(c: Container) -> EstimateConfig:
    """sla.toml [estimate] (`Container.sla`, read once per file)."""
    return c.sla.estimate


# ---- recent step times ------------------------------------------------------------------------

Samples = dict[str, Distribution]  # step key → ready → done of its recent runs, on its clock

_cache: weakref.WeakKeyDictionary[Container, dict[str | None, tuple[datetime, Samples]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def recent_samples(c: Container, kecamatan: str | None, now: datetime) -> Samples:
    """Waiting + handling of every run finished by its step's own event, per step, on the
    step's clock, from the rollups of the window's days (the day `window` ago up to today, in
    office time); for one kecamatan or (None) all. Kept `cache_ttl` per process."""
    cfg = config_for(c)
    with _cache_lock:
        hit = _cache.get(c, {}).get(kecamatan)
    if hit is not None and hit[0] <= now < hit[0] + cfg.cache_ttl:
        return hit[1]
    zone = ZoneInfo(c.region.timezone)
    first = (now - cfg.window).astimezone(zone).date()
    cells = c.store.rollups(
        DONE, first, now.astimezone(zone).date(), kecamatan=kecamatan or ALL, service=ALL
    )
    found = distributions(merged(cells))
    samples = {name[2:]: d for name, d in found.items() if name.startswith("e|") and d.n > 0}
    with _cache_lock:
        _cache.setdefault(c, {})[kecamatan] = (now, samples)
    return samples


# ---- the estimate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepEstimate:
    step: Step
    seconds: float  # the typical time of the step, on its clock
    source: str  # kecamatan | all | mutu_baku
    samples: int


@dataclass(frozen=True)
class Estimate:
    at: datetime  # when the last step is expected to be done
    steps: tuple[StepEstimate, ...]

    @property
    def from_data(self) -> bool:
        return any(s.source != MUTU_BAKU for s in self.steps)


def remaining_steps(sop: Sop, case: Case) -> tuple[Step, ...]:
    """The waiting step and the steps after it, while each follows the last without the
    resident (empty when the case waits on the resident somewhere before the end)."""
    step = case.waiting_step(sop)
    chain: list[Step] = []
    while step is not None and step not in chain:
        chain.append(step)
        step = sop.step_waiting_in(step.to_state)
    if not chain or chain[-1] != sop.steps[-1]:
        return ()
    return tuple(chain)


def typical(c: Container, step: Step, kecamatan: str, now: datetime) -> StepEstimate:
    """The median recent time of `step` in the kecamatan; with too few runs there, in every
    kecamatan; with too few anywhere, its mutu baku."""
    need = config_for(c).min_samples
    for scope, source in ((kecamatan, KECAMATAN), (None, EVERY)):
        runs = recent_samples(c, scope, now).get(step.key)
        median = runs.median() if runs is not None and runs.n >= need else None
        if runs is not None and median is not None:
            return StepEstimate(step, median, source, runs.n)
    return StepEstimate(step, step.mutu_baku_seconds, MUTU_BAKU, 0)


def expected_completion(c: Container, case: Case, now: datetime | None = None) -> Estimate | None:
    """When the case's last SOP step is expected to be done, or None if it waits on the
    resident (or is closed). The waiting step is counted from what it has already used."""
    now = now or c.clock.now()
    sop, clocks = c.sop, c.sla_clocks
    steps = remaining_steps(sop, case)
    if not steps:
        return None
    at = now
    out = []
    for step in steps:
        est = typical(c, step, case.kecamatan, now)
        clock = clocks.clock_of(step)
        left = est.seconds
        run = case.current_run(sop) if step == steps[0] else None
        if run is not None:
            left = max(left - clocks.measure(run.ready_at, now, clock), 0.0)
        at = clocks.due(at, left, clock)
        out.append(est)
    return Estimate(at, tuple(out))


def format_when(at: datetime, timezone: str) -> str:
    """'Senin, 30 November 2026 pukul 10.00 WITA' (rounded up to the minute)."""
    local = at.astimezone(ZoneInfo(timezone))
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    zone = ZONE_NAMES.get(timezone, timezone)
    return (
        f"{DAY_NAMES[local.weekday()]}, {local.day} {MONTH_NAMES[local.month - 1]} {local.year} "
        f"pukul {local:%H.%M} {zone}"
    )


def status_reply(c: Container, case: Case) -> str:
    """The answer to STATUS: the state, who has the request at which step, and when it is
    expected to be done (or what the resident still has to do)."""
    sop = c.sop
    state = STATE_LABELS.get(case.state, case.state)
    waiting = case.waiting_step(sop)
    resident_wait = c.sla.resident_wait(case.state)
    if case.is_open(sop) and waiting is None and resident_wait is not None:
        return text(
            "wa_status_resident",
            reg_no=case.reg_no,
            state=state,
            todo=text(f"wa_status_todo_{resident_wait.name}"),
        )
    if not case.is_open(sop) or waiting is None:
        return text("wa_status_closed", reg_no=case.reg_no, state=state)
    lines = [
        text(
            "wa_status_office",
            reg_no=case.reg_no,
            state=state,
            holder=ROLE_LABELS.get(waiting.role, waiting.role),
            number=waiting.number,
            total=len(sop.steps),
            kegiatan=waiting.kegiatan[:1].lower() + waiting.kegiatan[1:],
        )
    ]
    estimate = expected_completion(c, case)
    if estimate is not None:
        cal = c.sla_clocks.calendar
        zone = cal.timezone if cal is not None else c.region.timezone
        lines.append(text("wa_status_eta", when=format_when(estimate.at, zone)))
        days = config_for(c).window / timedelta(days=1)
        basis = "wa_status_eta_basis_data" if estimate.from_data else "wa_status_eta_basis_sop"
        lines.append(text(basis, days=f"{days:g}"))
        log.info(
            "status estimate",
            extra={
                "case_id": case.id,
                "sources": [f"{s.step.key}:{s.source}:{s.samples}" for s in estimate.steps],
            },
        )
    return "\n".join(lines)
