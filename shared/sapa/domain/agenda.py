"""When the sweeps next have something to do with a case: its due times.

The SLA sweep and the retention sweep do not read every case. Each write of a case records
beside it the earliest moment each sweep has something to do with it (`Due`), the store
indexes those moments, and a sweep reads only the cases whose moment has come
(`CaseStore.due_cases`). The moments are computed here with the very rules the sweeps apply,
so a case is read when, and only when, there is something to do:

- SLA (`Due.sla`), for any case: a complaint passing its response time unanswered. For an
  open case: the waiting step's run breaching its mutu baku and then
  escalating after the grace, each on the step's clock (handling time once claimed, waiting
  time before), the lead time passing the SOP's target on its clock, and a resident who keeps
  the case waiting being reminded and the case expiring (raw time). For an expired case: its
  expiry notice while it is still to be sent (at once, or when another sweep's lease on it
  runs out). Whatever the case's `sla_flags` say was done is not due again.
- Retention (`Due.retention`), for a closed case: the next class of the retention schedule
  whose period has run out and which has not been applied.
- `Due.claimant`: the officer holding the open case's waiting step (the sweep and the admin's
  changes find an officer's claims by it).
- `Due.complaint`: the earliest response deadline of the case's complaints not yet closed
  (the complaint worklist reads the cases by it, the most urgent first).
- `Due.suggestion`: when the resident answered the satisfaction survey with a suggestion in
  their own words (the IKM page reads a period's suggestions by it, never by case).

A claim that its officer may no longer hold (deactivated, moved) has no due time: it follows
a change of the roster, not of the case; the sweep asks for the claims of each officer.

The moments depend on the SOP's mutu baku, sla.toml (clocks, working hours, holidays, grace,
residents' waits) and the retention schedule. `Agenda.fingerprint` names that configuration:
when it changes the sweeps put every case's due times right before they rely on them.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from sapa.domain.case import Case, Complaint
from sapa.domain.sla import SlaClocks, SlaConfig
from sapa.domain.sop import Sop

# The expiry message's flag on the case: due → sending@t → <result>@t.
EXPIRY_NOTICE = "expiry_notice"
# A sweep that died while sending the expiry notice: another one takes over after this.
NOTICE_LEASE = timedelta(minutes=10)
# The sweep records a breach once the time is *past* the mutu baku (strictly more): the due
# moment is this much after it, the smallest step of a timestamp.
_PAST = 1e-6


def complaint_flag(complaint: Complaint) -> str:
    """The case's `sla_flags` entry once the complaint was recorded late."""
    return f"complaint_late:{complaint.id}"


def complaints_to_flag(case: Case) -> list[Complaint]:
    """The case's complaints the SLA sweep will record late once their response time has run
    out: neither answered nor closed, and not recorded yet."""
    return [
        k
        for k in case.complaints
        if k.replied_at is None and k.closed_at is None and complaint_flag(k) not in case.sla_flags
    ]


# ---- the retention schedule -----------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """How long each class of a closed case's data is kept (retention.toml)."""

    requirement_documents: timedelta
    personal_data: timedelta
    signed_document: timedelta


@cache
def load_schedule(path: str | None = None) -> Schedule:
    if path is None:
        raw = resources.files("sapa.data").joinpath("retention.toml").read_text("utf-8")
    else:
        raw = Path(path).read_text("utf-8")
    classes = tomllib.loads(raw)["classes"]
    return Schedule(
        *(
            timedelta(days=int(classes[n]["retain_days"]))
            for n in ("requirement_documents", "personal_data", "signed_document")
        )
    )


def retention_pending(schedule: Schedule, case: Case) -> dict[str, datetime]:
    """The retention actions not yet applied to a closed case, each with the moment it is due
    (`documents`, `personal_data`, `signed`); empty while the case is open."""
    closed = case.closed_at
    if closed is None:
        return {}
    pending: dict[str, datetime] = {}
    if case.retention.get("documents") is None:
        pending["documents"] = closed + schedule.requirement_documents
    if case.retention.get("personal_data") is None:
        pending["personal_data"] = closed + schedule.personal_data
    if case.signed is not None and "signed" not in case.retention:
        pending["signed"] = closed + schedule.signed_document
    return pending


# ---- what identifies a step run and a resident's wait -----------------------------------------


def run_key(case: Case, sop: Sop) -> str | None:
    """The identity of the waiting step's open run: its place in the case's runs and its step
    (runs are only ever appended, so the place is stable)."""
    run = case.current_run(sop)
    if run is None:
        return None
    index = next(i for i, r in enumerate(case.steps) if r is run)
    return f"{index}:{run.step}"


def waiting_since(case: Case) -> datetime:
    """When the case entered its current state, for a state that waits on the resident: every
    move into such a state (send_link, request_correction) closes an officer's step run."""
    done = [r.done_at for r in case.steps if r.done_at is not None]
    return max(done, default=case.created_at)


def notice_due(case: Case) -> datetime | None:
    """When an expired case's notice may be sent by a sweep (None: sent, refused or none)."""
    flag = case.sla_flags.get(EXPIRY_NOTICE)
    if flag == "due":
        return case.closed_at or case.updated_at
    if flag is not None and flag.startswith("sending@"):
        return datetime.fromisoformat(flag.removeprefix("sending@")) + NOTICE_LEASE
    return None


# ---- the agenda ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """What the store indexes beside a case (see the module's docstring)."""

    sla: datetime | None = None
    retention: datetime | None = None
    claimant: str | None = None
    complaint: datetime | None = None
    suggestion: datetime | None = None


class Agenda:
    """The due times of cases under one configuration."""

    def __init__(self, sop: Sop, clocks: SlaClocks, sweep: SlaConfig, schedule: Schedule):
        self.sop = sop
        self.clocks = clocks
        self.sweep = sweep
        self.schedule = schedule

    def due(self, case: Case) -> Due:
        open_ = case.is_open(self.sop)
        run = case.current_run(self.sop) if open_ else None
        return Due(
            sla=self.sla_due(case),
            retention=self.retention_due(case),
            claimant=run.claimed_by if run is not None and run.claimed_by else None,
            complaint=min((k.due_at for k in case.complaints if k.closed_at is None), default=None),
            suggestion=case.survey.at if case.survey is not None and case.survey.text else None,
        )

    def retention_due(self, case: Case) -> datetime | None:
        return min(retention_pending(self.schedule, case).values(), default=None)

    def sla_due(self, case: Case) -> datetime | None:
        """The earliest moment the SLA sweep has something to record on the case."""
        late = [k.due_at + timedelta(seconds=_PAST) for k in complaints_to_flag(case)]
        steps = self._steps_due(case)
        return min((m for m in (*late, steps) if m is not None), default=None)

    def _steps_due(self, case: Case) -> datetime | None:
        if not case.is_open(self.sop):
            return notice_due(case) if case.state == "expired" else None
        sop, clocks, flags = self.sop, self.clocks, case.sla_flags
        moments: list[datetime] = []
        run, key = case.current_run(sop), run_key(case, sop)
        if run is not None and key is not None:
            step = sop.step(run.step)
            clock = clocks.clock_of(step, run)
            # measured as the sweep measures it: handling time once claimed, waiting before
            start = run.claimed_at if run.claimed_at is not None else run.ready_at
            mutu = step.mutu_baku_seconds
            if f"breach:{key}" not in flags:
                moments.append(clocks.due(start, mutu + _PAST, clock))
            if f"escalated:{key}" not in flags:
                grace = self.sweep.grace.total_seconds()
                moments.append(clocks.due(start, mutu + max(grace, _PAST), clock))
        if "lead_time" not in flags:
            clock = clocks.lead_time if clocks.calendar is not None else "raw"
            target = sop.lead_time_target_seconds
            moments.append(clocks.due(case.created_at, target + _PAST, clock))
        wait = self.sweep.resident_wait(case.state)
        if wait is not None:
            since = waiting_since(case)
            moments.append(since + wait.expire_after)
            if f"reminder:{case.state}:{since.isoformat()}" not in flags:
                moments.append(since + wait.remind_after)
        return min(moments, default=None)

    @property
    def sla_fingerprint(self) -> str:
        """Names everything the SLA due times depend on."""
        steps = {s.key: (s.role, s.mutu_baku_seconds) for s in self.sop.steps}
        return _digest(
            {
                "steps": steps,
                "lead_time": self.sop.lead_time_target_seconds,
                "clocks": repr(self.clocks),
                "sweep": repr(self.sweep),
                "lease": NOTICE_LEASE.total_seconds(),
            }
        )

    @property
    def retention_fingerprint(self) -> str:
        """Names everything the retention due times depend on."""
        return _digest({k: v.total_seconds() for k, v in asdict(self.schedule).items()})


def _digest(value: object) -> str:
    raw = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
