"""Rollups: the reports' figures kept as the work happens, per local day × kecamatan × service,
so a report reads a few hundred small counter sets instead of every case of its period.

A case's *ledger* is what that case has added to the rollups: its opening day, kecamatan and
service, its end state and lead time, and one entry per finished step run (the run's times on
its SLA clock, whether it was within the mutu baku, who did it). The store keeps the ledger
beside the case and, in the commit that saves the case, brings it up to date
(`RollupTracker.ledger`) and adds the difference between the counters of the old and the new
ledger (`counters`, `difference`) to the rollup cells. Because the difference is taken against
the ledger the store itself holds, under the same version check as the case, a change re-run
on a concurrent update, a replayed task or a retried save adds nothing twice. A run is counted
once, when it is first seen finished, on the clocks and SOP of that moment; a later change of
the case's service moves everything it added to the new service's cells.

Cells (`CellKey`) come in five parts:

- `case`: per *opening* day (the dashboard counts the cases opened in its period): cases,
  end states, lead time of the delivered ones, officer runs and those within standard;
- `step`: per opening day: each step's handling (on its clock), wall-clock handling and
  waiting times, within standard, officer runs; each officer's runs, breaches, handling ratio;
- `done`: per day a run was *finished*, service `*`: ready → done of the runs closed by their
  own step's event (the STATUS estimate);
- `skm`: per day the resident *answered* the satisfaction survey (sapa.domain.ikm): how many
  answered, how many gave each answer to each element, the same per officer role that handled
  a step of the case, and the profile choices. Never per officer: answers are anonymous;
- `cmp`: per day a resident *filed* a complaint: how many were filed, answered, answered after
  the response time, closed, and closed with each outcome.

Every cell is also added up under `*` (all) kecamatan and all services, so a report with no
filter reads the all-kecamatan cells and not every kecamatan's.

Counter names: in `case` cells `cases`, `end|<state>` (terminal states), `lead` (a
distribution), `lead|ok` (within the lead-time target), `on` and `ook` (officer runs, and those
within standard); in `step` cells, per step k, `s|k|h`, `s|k|r`, `s|k|w` (distributions of
handling on the step's clock, wall-clock handling, waiting), `s|k|ok` (within standard),
`s|k|wk` (runs on working hours), `s|k|on`, `s|k|ook`, and per officer o (`officer_token`)
`o|o|k|runs`, `o|o|ok`, `o|o|ht`, `o|o|wt` (handling and waiting totals) and `o|o|x` (a
distribution of handling / mutu baku, in billionths); in `done` cells `e|k` (a distribution
of ready → done). A distribution d is `d|n` (count), `d|t` (total), `d|z` (zeros), and per
bucket j `d|<j>` and `d|<j>t`.

Durations are counted in integer microseconds (exact: every SLA duration is a difference of
datetimes), so totals add up exactly in any order. A distribution (`dist`) is a count, a
total and, per log-spaced bucket (8 per doubling: bucket j holds values in
[2^(j/8), 2^((j+1)/8)) seconds), the count and total of its values; zeros have their own
bucket. A median or percentile read from it (`Distribution`) is the mean of the values in the
bucket that holds the wanted rank, so it lies in the same bucket as the exact figure: within a
factor 2^(1/8) (±9.05 %) of it, and exact when the values of that bucket are equal. A median
of an even count is the mean of two such values: the same bound.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sapa.domain.case import Case, StepRun
from sapa.domain.ikm import CODES, load_survey
from sapa.domain.sla import RAW, WORKING, SlaClocks, Timeline, step_timing
from sapa.domain.sop import Sop

CASE, STEP, DONE, SURVEY, COMPLAINTS = "case", "step", "done", "skm", "cmp"
PARTS = (CASE, STEP, DONE, SURVEY, COMPLAINTS)
ALL = "*"  # every kecamatan, or every service
NO_SERVICE = "-"  # a case whose resident has not chosen a service
VERSION = 1  # of the ledger's layout and the bucket scheme: another value is recounted

# Runs closed by the resident's cancellation or by expiry are not handled by anyone.
NOT_HANDLED = frozenset({"cancel", "expire"})
MICROS = 1_000_000  # units per second of a duration's total
NANOS = 1_000_000_000  # units of a handling ratio's total

Counters = dict[str, int]


class CellKey(NamedTuple):
    part: str  # case | step | done
    day: str  # a local date, YYYY-MM-DD (the office's time zone)
    kecamatan: str  # a kecamatan code, or ALL
    service: str  # a service code, NO_SERVICE or ALL


Changes = dict[CellKey, Counters]


@dataclass(frozen=True)
class RollupCell:
    """One cell's counters as stored (only non-zero ones)."""

    key: CellKey
    counters: Mapping[str, int] = field(default_factory=dict)


# ---- buckets -----------------------------------------------------------------------------------

PER_DOUBLING = 8
_EDGES = (*(2.0 ** (i / PER_DOUBLING) for i in range(PER_DOUBLING)), 2.0)
BUCKET_FACTOR = 2.0 ** (1 / PER_DOUBLING)  # the width of a bucket: the bound of a figure


def bucket_of(value: float) -> int | None:
    """The bucket of a positive value (None for zero or less): j with 2^(j/8) <= value <
    2^((j+1)/8), found by exact comparisons of the mantissa (no logarithm rounding)."""
    if value <= 0:
        return None
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= m < 1
    i = bisect.bisect_right(_EDGES, mantissa * 2.0) - 1
    return (exponent - 1) * PER_DOUBLING + i


def bucket_bounds(j: int) -> tuple[float, float]:
    """The lowest value of bucket j and the lowest of the next one."""
    exponent, i = divmod(j, PER_DOUBLING)
    return math.ldexp(_EDGES[i], exponent), math.ldexp(_EDGES[i + 1], exponent)


def dist(into: Counter[str], name: str, value: float, units: int) -> None:
    """Add one value (and its integer units: microseconds, or billionths of a ratio) to the
    distribution `name`."""
    into[f"{name}|n"] += 1
    into[f"{name}|t"] += units
    j = bucket_of(value)
    if j is None:
        into[f"{name}|z"] += 1
    else:
        into[f"{name}|{j}"] += 1
        into[f"{name}|{j}t"] += units


@dataclass
class Distribution:
    """A distribution read back from counters: count, total and buckets."""

    scale: float = MICROS  # units per value
    n: int = 0
    total: int = 0
    zeros: int = 0
    buckets: dict[int, list[int]] = field(default_factory=dict)  # j → [count, units]

    def add(self, tail: str, value: int) -> None:
        """One counter of this distribution (`tail` is what follows the name's `|`)."""
        if tail == "n":
            self.n += value
        elif tail == "t":
            self.total += value
        elif tail == "z":
            self.zeros += value
        elif tail.endswith("t"):
            self.buckets.setdefault(int(tail[:-1]), [0, 0])[1] += value
        else:
            self.buckets.setdefault(int(tail), [0, 0])[0] += value

    def at_rank(self, rank: int) -> float:
        """The value at a 1-based rank: the mean of its bucket's values, kept in the bucket."""
        if rank <= self.zeros:
            return 0.0
        left = rank - self.zeros
        for j in sorted(self.buckets):
            count, units = self.buckets[j]
            if count <= 0:
                continue
            if left <= count:
                lo, hi = bucket_bounds(j)
                return min(max(units / count / self.scale, lo), hi)
            left -= count
        raise ValueError("rank beyond the distribution's count")

    def median(self) -> float | None:
        """As `statistics.median` would give of the values, within one bucket."""
        if self.n <= 0:
            return None
        if self.n % 2:
            return self.at_rank((self.n + 1) // 2)
        return (self.at_rank(self.n // 2) + self.at_rank(self.n // 2 + 1)) / 2

    def percentile(self, q: float) -> float | None:
        """Nearest rank, as the dashboard defines it, within one bucket."""
        if self.n <= 0:
            return None
        return self.at_rank(max(math.ceil(q / 100 * self.n), 1))

    def merge(self, other: Distribution) -> None:
        self.n += other.n
        self.total += other.total
        self.zeros += other.zeros
        for j, (count, units) in other.buckets.items():
            mine = self.buckets.setdefault(j, [0, 0])
            mine[0] += count
            mine[1] += units


def distributions(
    counters: Mapping[str, int], *, scales: Mapping[str, float] | None = None
) -> dict[str, Distribution]:
    """Every distribution in a set of counters, by name (a name's scale from `scales` by its
    last segment, microseconds otherwise)."""
    out: dict[str, Distribution] = {}
    for key, value in counters.items():
        name, _, tail = key.rpartition("|")
        if not name or not _is_dist_tail(tail):
            continue
        d = out.get(name)
        if d is None:
            last = name.rpartition("|")[2]
            d = out[name] = Distribution(scale=(scales or {}).get(last, MICROS))
        d.add(tail, value)
    return out


def _is_dist_tail(tail: str) -> bool:
    if tail in ("n", "t", "z"):
        return True
    core = tail[:-1] if tail.endswith("t") else tail
    return core.lstrip("-").isdigit()


# ---- names -------------------------------------------------------------------------------------


def officer_token(officer: str) -> str:
    """An officer id inside a counter name (`|` separates the name's parts)."""
    return officer.replace("%", "%25").replace("|", "%7C")


def officer_id(token: str) -> str:
    return token.replace("%7C", "|").replace("%25", "%")


# ---- the ledger --------------------------------------------------------------------------------


def _us(seconds: float) -> int:
    return round(seconds * MICROS)


def _by_officer(step_role: str, run: StepRun) -> bool:
    who = run.done_by or ""
    return step_role not in ("pemohon", "system") and who != "system" and not who.startswith("wa:")


@dataclass(frozen=True)
class RollupTracker:
    """Brings a case's ledger up to date: the SOP, the SLA clocks and the office's time zone
    of the moment the store saves the case."""

    sop: Sop
    clocks: SlaClocks
    timezone: str

    def ledger(self, case: Case, held: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The case's ledger: `held` (the one the store holds, or None) with the runs finished
        since and the case's present day, kecamatan, service and end. What `held` counted is
        kept as it was counted (a later change of the SLA settings does not rewrite it; `sapa
        rollup-rebuild` does, with `held=None`)."""
        tz = ZoneInfo(self.timezone)
        if held is not None and held.get("v") != VERSION:
            held = None
        old_runs: Mapping[str, Any] = held.get("runs", {}) if held else {}
        runs: dict[str, Any] = {}
        for i, run in enumerate(case.steps):
            key = str(i)
            if key in old_runs:
                runs[key] = old_runs[key]
            elif run.done_at is not None:
                runs[key] = self._run(run, tz)
        end = case.state if case.state in self.sop.terminal_states else None
        if held is not None and held.get("end") == end:
            lead, within = held.get("lead"), held.get("lok", 0)
        else:
            lead, within = self._lead(case) if end == "delivered" else (None, 0)
        out = {
            "v": VERSION,
            "day": case.created_at.astimezone(tz).date().isoformat(),
            "kec": case.kecamatan,
            "svc": case.service or NO_SERVICE,
            "end": end,
            "lead": lead,
            "lok": within,
            "runs": runs,
        }
        survey = held["skm"] if held and held.get("skm") else self._survey(case, tz)
        if survey:
            out["skm"] = survey
        if case.complaints:  # they change as they are handled: always as the case has them
            out["cmp"] = {
                k.id: {
                    "d": k.at.astimezone(tz).date().isoformat(),
                    "r": int(k.replied_at is not None),
                    "l": int(k.replied_at is not None and k.replied_at > k.due_at),
                    "o": k.outcome,
                }
                for k in case.complaints
            }
        return out

    def _survey(self, case: Case, tz: ZoneInfo) -> dict[str, Any] | None:
        """What the resident's survey answer adds: its day, the scores in element order, the
        roles of the officers who did a step of the case (never who) and the profile choices
        by number (1 = the first; a choice the questionnaire no longer has is left out)."""
        answer = case.survey
        if answer is None:
            return None
        roles = set()
        for run in case.steps:
            try:
                step = self.sop.step(run.step)
            except KeyError:
                continue
            handled = run.done_at is not None and run.outcome not in NOT_HANDLED
            if handled and _by_officer(step.role, run):
                roles.add(step.role)
        profile = {}
        for question in load_survey().profile:
            choice = answer.profile.get(question.key)
            if choice in question.choices:
                profile[question.key] = question.choices.index(choice) + 1
        return {
            "d": answer.at.astimezone(tz).date().isoformat(),
            "a": [int(answer.scores[code]) for code in CODES],
            "r": sorted(roles),
            "p": profile,
        }

    def _run(self, run: StepRun, tz: ZoneInfo) -> dict[str, Any]:
        """What one finished run adds: {} when nothing (a step of another SOP, a run the
        resident's cancellation or expiry closed)."""
        try:
            step = self.sop.step(run.step)
        except KeyError:
            return {}
        assert run.done_at is not None
        t = step_timing(self.sop, run, run.done_at, self.clocks)
        if t.handling_seconds is None or run.outcome in NOT_HANDLED:
            return {}
        # on the step's SLA clock (working hours where sla.toml says so), as the dashboard reads
        sla_handling = t.sla_handling_seconds
        handling = (sla_handling if sla_handling is not None else t.handling_seconds) or 0.0
        entry: dict[str, Any] = {
            "k": step.key,
            "h": _us(handling),
            "r": _us(t.handling_seconds or 0.0),
            "ok": int(not t.breached),
            "wk": int(t.clock == WORKING),
        }
        waiting = t.sla_waiting_seconds
        if waiting is None:
            waiting = t.waiting_seconds
        if run.claimed_at is not None and waiting is not None:
            entry["w"] = _us(waiting)
        if _by_officer(step.role, run):
            entry["by"] = run.done_by or "?"
            entry["x"] = handling / (t.mutu_baku_seconds or 1.0)
        if run.outcome == step.event:  # how long the step takes, for the STATUS estimate
            clock = self.clocks.clock_of(step)
            entry["e"] = _us(self.clocks.measure(run.ready_at, run.done_at, clock))
            entry["d"] = run.done_at.astimezone(tz).date().isoformat()
        return entry

    def _lead(self, case: Case) -> tuple[int, int]:
        """Greeting → end on the clock of the office's lead-time target, and whether within."""
        end: datetime = case.closed_at or case.updated_at
        clocks = self.clocks
        lead = Timeline(
            steps=(),
            lead_time_seconds=max((end - case.created_at).total_seconds(), 0.0),
            lead_time_target_seconds=self.sop.lead_time_target_seconds,
            standard_total_seconds=self.sop.standard_total_seconds,
            finished=True,
            working_lead_time_seconds=clocks.working(case.created_at, end),
            lead_time_clock=clocks.lead_time if clocks.calendar is not None else RAW,
        )
        return _us(lead.sla_lead_time_seconds), int(not lead.lead_time_breached)


# ---- counters of a ledger, and the difference of two ----------------------------------------


def counters(ledger: Mapping[str, Any] | None) -> Changes:
    """The cells a ledger adds to and what it adds to each (zeros left out)."""
    if not ledger:
        return {}
    day, kec, svc = str(ledger["day"]), str(ledger["kec"]), str(ledger["svc"])
    case: Counter[str] = Counter({"cases": 1})
    step: Counter[str] = Counter()
    done: defaultdict[str, Counter[str]] = defaultdict(Counter)
    if ledger.get("end"):
        case[f"end|{ledger['end']}"] += 1
    if ledger.get("lead") is not None:
        lead = int(ledger["lead"])
        dist(case, "lead", lead / MICROS, lead)
        case["lead|ok"] += int(ledger.get("lok", 0))
    for entry in ledger.get("runs", {}).values():
        if not entry:
            continue
        k = entry["k"]
        h, r, ok = int(entry["h"]), int(entry["r"]), int(entry["ok"])
        dist(step, f"s|{k}|h", h / MICROS, h)
        dist(step, f"s|{k}|r", r / MICROS, r)
        step[f"s|{k}|ok"] += ok
        step[f"s|{k}|wk"] += int(entry.get("wk", 0))
        w = entry.get("w")
        if w is not None:
            dist(step, f"s|{k}|w", int(w) / MICROS, int(w))
        if "by" in entry:
            step[f"s|{k}|on"] += 1
            step[f"s|{k}|ook"] += ok
            case["on"] += 1
            case["ook"] += ok
            o = f"o|{officer_token(str(entry['by']))}"
            step[f"{o}|{k}|runs"] += 1
            step[f"{o}|ok"] += ok
            step[f"{o}|ht"] += h
            step[f"{o}|wt"] += int(w or 0)
            ratio = float(entry["x"])
            dist(step, f"{o}|x", ratio, round(ratio * NANOS))
        if "e" in entry:
            e = int(entry["e"])
            dist(done[str(entry["d"])], f"e|{k}", e / MICROS, e)
    out: Changes = {}
    for part, values in ((CASE, case), (STEP, step)):
        for k_, s_ in ((kec, svc), (kec, ALL), (ALL, svc), (ALL, ALL)):
            _add(out, CellKey(part, day, k_, s_), values)
    for done_day, values in done.items():
        for k_ in (kec, ALL):
            _add(out, CellKey(DONE, done_day, k_, ALL), values)
    filed: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for entry in ledger.get("cmp", {}).values():
        day_of = filed[str(entry["d"])]
        day_of.update(filed=1, replied=int(entry["r"]), late=int(entry["l"]))
        if entry.get("o"):
            day_of.update({"closed": 1, f"out|{entry['o']}": 1})
    for filed_day, values in filed.items():
        for k_, s_ in ((kec, svc), (kec, ALL), (ALL, svc), (ALL, ALL)):
            _add(out, CellKey(COMPLAINTS, filed_day, k_, s_), values)
    survey = ledger.get("skm")
    if survey:
        answered = survey_counters(survey)
        for k_, s_ in ((kec, svc), (kec, ALL), (ALL, svc), (ALL, ALL)):
            _add(out, CellKey(SURVEY, str(survey["d"]), k_, s_), answered)
    return out


def survey_counters(survey: Mapping[str, Any]) -> Counter[str]:
    """The `skm` counters of one answer (a ledger's `skm` entry)."""
    scores = list(zip(CODES, survey["a"], strict=True))
    out: Counter[str] = Counter({"n": 1})
    for code, score in scores:
        out[f"u|{code}|{score}"] += 1
    for role in survey.get("r", ()):
        out[f"r|{role}|n"] += 1
        for code, score in scores:
            out[f"r|{role}|u|{code}|{score}"] += 1
    for key, choice in survey.get("p", {}).items():
        out[f"p|{key}|{choice}"] += 1
    return out


def _add(into: Changes, key: CellKey, values: Mapping[str, int]) -> None:
    cell = {name: value for name, value in values.items() if value}
    if cell:
        into[key] = cell


def difference(old: Changes, new: Changes) -> Changes:
    """new − old, per cell and counter, without zeros: what to add to the stored cells."""
    out: Changes = {}
    for key in old.keys() | new.keys():
        cell: Counters = {}
        a, b = old.get(key, {}), new.get(key, {})
        for name in a.keys() | b.keys():
            change = b.get(name, 0) - a.get(name, 0)
            if change:
                cell[name] = change
        if cell:
            out[key] = cell
    return out


def total(changes: Iterable[Changes]) -> Changes:
    """Several sets of changes added up (zeros dropped)."""
    out: Changes = {}
    for one in changes:
        for key, values in one.items():
            cell = out.setdefault(key, {})
            for name, value in values.items():
                cell[name] = cell.get(name, 0) + value
    return {k: {n: v for n, v in c.items() if v} for k, c in out.items() if any(c.values())}


def merged(cells: Iterable[RollupCell | Mapping[str, int]]) -> Counters:
    """The counters of several cells added up."""
    out: Counters = {}
    get = out.get
    for cell in cells:
        values = cell.counters if isinstance(cell, RollupCell) else cell
        for name, value in values.items():
            out[name] = get(name, 0) + value
    return out
