"""The SOP as data: steps, roles, standard times (mutu baku) and the moves between states."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

STEP_ROLE = "@step"


@dataclass(frozen=True)
class Step:
    number: int
    key: str
    event: str
    kegiatan: str
    role: str
    mutu_baku_seconds: float
    output: str
    from_state: str
    to_state: str
    automatable: bool = False


@dataclass(frozen=True)
class Transition:
    event: str
    from_state: str
    to_state: str
    roles: tuple[str, ...]
    step: Step | None = None


@dataclass(frozen=True)
class Sop:
    """One office's SOP. Every question the state machine asks is answered from here."""

    id: str
    title: str
    office: str
    steps: tuple[Step, ...]
    transitions: tuple[Transition, ...]
    roles: frozenset[str]
    kecamatan_roles: frozenset[str]
    initial_state: str
    terminal_states: frozenset[str]
    lead_time_target_seconds: float
    claim_timeout_seconds: float
    # an index derived from `transitions`: kept out of eq and hash so a Sop stays hashable
    _by_event_state: dict[tuple[str, str], Transition] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for t in self.transitions:
            self._by_event_state[(t.event, t.from_state)] = t

    @property
    def standard_total_seconds(self) -> float:
        return sum(s.mutu_baku_seconds for s in self.steps)

    @property
    def states(self) -> frozenset[str]:
        found = {self.initial_state, *self.terminal_states}
        for t in self.transitions:
            found.update((t.from_state, t.to_state))
        found.discard("")
        return frozenset(found)

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def step_for_event(self, event: str) -> Step | None:
        return next((s for s in self.steps if s.event == event), None)

    def step_waiting_in(self, state: str) -> Step | None:
        """The step whose work can start when a case is in `state` (None: waiting on nobody)."""
        return next((s for s in self.steps if s.from_state == state and s.from_state), None)

    def step_producing(self, state: str) -> Step | None:
        return next((s for s in self.steps if s.to_state == state), None)

    def previous_step(self, step: Step) -> Step | None:
        return next((s for s in self.steps if s.number == step.number - 1), None)

    def transition(self, event: str, state: str) -> Transition | None:
        return self._by_event_state.get((event, state))

    def events_from(self, state: str) -> list[Transition]:
        return [t for t in self.transitions if t.from_state == state]


def _parse(data: dict[str, object]) -> Sop:
    head = data["sop"]
    assert isinstance(head, dict)
    steps = tuple(
        Step(
            number=int(s["number"]),
            key=s["key"],
            event=s["event"],
            kegiatan=s["kegiatan"],
            role=s["role"],
            mutu_baku_seconds=float(s["mutu_baku_seconds"]),
            output=s["output"],
            from_state=s.get("from_state", ""),
            to_state=s["to_state"],
            automatable=bool(s.get("automatable", False)),
        )
        for s in data["steps"]  # type: ignore[attr-defined]
    )
    numbers = [s.number for s in steps]
    if numbers != list(range(1, len(steps) + 1)):
        raise ValueError(f"SOP steps must be numbered 1..n in order, got {numbers}")
    transitions: list[Transition] = []
    for s in steps:
        if s.from_state:
            performers = (s.role, "system") if s.automatable else (s.role,)
            transitions.append(Transition(s.event, s.from_state, s.to_state, performers, s))
    for t in data.get("transitions", []):  # type: ignore[attr-defined]
        for src in t["from"]:
            transitions.append(Transition(t["event"], src, t["to"], tuple(t["roles"])))
    roles = frozenset(head["roles"])
    for s in steps:  # step 1 has no transition, so check every step's role itself
        if s.role not in roles:
            raise ValueError(f"step {s.number} names unknown role {s.role!r}")
    for t in transitions:
        unknown = set(t.roles) - roles - {STEP_ROLE}
        if unknown:
            raise ValueError(f"transition {t.event} names unknown roles {sorted(unknown)}")
    return Sop(
        id=head["id"],
        title=head["title"],
        office=head["office"],
        steps=steps,
        transitions=tuple(transitions),
        roles=roles,
        kecamatan_roles=frozenset(head.get("kecamatan_roles", [])),
        initial_state=head["initial_state"],
        terminal_states=frozenset(head["terminal_states"]),
        lead_time_target_seconds=float(head["lead_time_target_seconds"]),
        claim_timeout_seconds=float(head.get("claim_timeout_seconds", 1800)),
    )


def load_sop(path: str | Path | None = None) -> Sop:
    """Load an SOP file; without a path, the bundled Gowa SOP."""
    if path is None:
        raw = resources.files("sapa.data").joinpath("sop_gowa.toml").read_text("utf-8")
    else:
        raw = Path(path).read_text("utf-8")
    return _parse(tomllib.loads(raw))


@cache
def default_sop() -> Sop:
    return load_sop()
