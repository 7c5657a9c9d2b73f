"""One driver of a case along the SOP's happy path, for tests, benchmarks and the demo.

The path is read from the SOP (`happy_path`): its steps in order, joined by the moves between
them (the resident's form, the system's delivery). The officers come from the staff file
(`Office.officer`: the first officer holding the step's role, of the case's kecamatan when the
role is kecamatan-bound). What a step needs besides the action (the SIAK draft, the signing
passphrase) is in one table here (`step_input`, `ANSWERED_LATER`).

Where the walk acts is a `Desk`: in-process through the services (`ServiceDesk`), over HTTP
with officers logged in to the staff function (`HttpDesk`), or anything else that can say
where a case stands and do an officer's action (tests have one on the Flask test client).
`walk` decides every move from where the case stands *now* (`Desk.look`), so a desk whose
answers can be lost (a server killed mid-request) never makes the walk do an action twice:
it looks again and carries on from wherever the case got to.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack

import requests

from sapa.adapters.pdf import simple_pdf
from sapa.domain.sop import STEP_ROLE, Sop, Step
from sapa.ports import StaffMember

if TYPE_CHECKING:
    from sapa.bootstrap import Container
    from sapa.domain.case import Case
    from sapa.services.guestbook import Submission
    from sapa.services.workflow import ActionInput

SYSTEM = "system"


class DriveError(RuntimeError):
    """The walk cannot go on: an action was refused, or the case stopped moving."""


class Stuck(DriveError):
    """The case does not move on (it left the happy path, or the system never finished)."""


class Refused(DriveError):
    """The server answered an officer's request with an error."""


# ---- the path, from the SOP ------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One move of the happy path: `event` by `role` takes a case from `from_state` to
    `to_state`; `step` is the SOP step it completes (None: a move between steps)."""

    event: str
    role: str
    from_state: str
    to_state: str
    step: Step | None = None


@cache
def happy_path(sop: Sop) -> tuple[Move, ...]:
    """The SOP's steps in their order, joined by the shortest moves from each step's end to
    the next step's start, and after the last step the one move out of its state (if there is
    exactly one: the system's delivery). The first move is step 1, the resident's greeting."""
    moves: list[Move] = []
    state = ""
    for step in sop.steps:
        if step.from_state != state:
            moves += _joining(sop, state, step.from_state)
        moves.append(Move(step.event, step.role, step.from_state, step.to_state, step))
        state = step.to_state
    after = sop.events_from(state)
    if len(after) == 1 and after[0].to_state != state:
        t = after[0]
        moves.append(Move(t.event, t.roles[0], t.from_state, t.to_state))
    return tuple(moves)


def _joining(sop: Sop, start: str, goal: str) -> list[Move]:
    """The fewest transitions from `start` to `goal` (breadth first), through open states."""
    paths: deque[list[Move]] = deque([[]])
    seen = {start}
    while paths:
        path = paths.popleft()
        here = path[-1].to_state if path else start
        for t in sop.events_from(here):
            if t.to_state in seen or t.step is not None or STEP_ROLE in t.roles:
                continue
            moved = [*path, Move(t.event, t.roles[0], t.from_state, t.to_state)]
            if t.to_state == goal:
                return moved
            if t.to_state not in sop.terminal_states:
                seen.add(t.to_state)
                paths.append(moved)
    raise ValueError(f"SOP {sop.id}: no way from {start!r} to {goal!r} between its steps")


@dataclass(frozen=True)
class Office:
    """What the walk needs of an office: its SOP, its staff (in the staff file's order) and
    which kecamatan send the guest-book link automatically."""

    sop: Sop
    staff: tuple[StaffMember, ...]
    link_modes: Mapping[str, str] = field(default_factory=dict)  # kecamatan → auto | manual

    @classmethod
    def of(cls, c: Container) -> Office:
        modes = {k.code: k.link_mode for k in c.region.kecamatan}
        return cls(c.sop, tuple(c.staff.all()), modes)

    @classmethod
    def local(cls) -> Office:
        """The office a local server of this environment runs (its settings' files): the
        staff as its staff file lists them, read without opening any data directory."""
        from sapa.adapters.embedded.staff_file import FileStaffDirectory
        from sapa.bootstrap import Container
        from sapa.settings import Settings

        c = Container(Settings())  # (no secrets: load_settings would make them in ./var)
        modes = {k.code: k.link_mode for k in c.region.kecamatan}
        return cls(c.sop, tuple(FileStaffDirectory(c.settings.staff_file).all()), modes)

    @property
    def path(self) -> tuple[Move, ...]:
        return happy_path(self.sop)

    @property
    def resident(self) -> str:
        """The resident's role: whoever does step 1 (the greeting)."""
        return self.sop.steps[0].role

    def by_system(self, move: Move, kecamatan: str) -> bool:
        """Whether the system makes `move` by itself (nobody acts: the walk waits for it)."""
        if move.role == SYSTEM:
            return True
        automatic = self.link_modes.get(kecamatan, "auto") == "auto"
        return move.step is not None and move.step.automatable and automatic

    def by_officer(self, move: Move, kecamatan: str) -> bool:
        return move.role != self.resident and not self.by_system(move, kecamatan)

    def officer(self, role: str, kecamatan: str) -> str:
        """The e-mail of the first officer holding `role` (of `kecamatan`, for the roles the
        SOP binds to a kecamatan)."""
        bound = role in self.sop.kecamatan_roles
        for s in self.staff:
            if role in s.roles and (not bound or s.kecamatan == kecamatan):
                return s.email
        raise DriveError(f"no officer holds {role!r}" + (f" in {kecamatan}" if bound else ""))

    def officers(self, kecamatan: str) -> list[str]:
        """The officers of every officer's move of the path for `kecamatan`, in path order."""
        found = [self.officer(m.role, kecamatan) for m in self.path if self._staffed(m)]
        return list(dict.fromkeys(found))

    def first_officer(self, kecamatan: str) -> str:
        """Who finds a new case of `kecamatan` in their worklist (the counter, in Gowa)."""
        return next(
            self.officer(m.role, kecamatan) for m in self.path if self.by_officer(m, kecamatan)
        )

    def _staffed(self, move: Move) -> bool:
        return move.role not in (self.resident, SYSTEM)


# ---- what each step needs besides the action --------------------------------------------------


@dataclass(frozen=True)
class StepInput:
    """What an officer sends with an action: form fields and uploads (field → filename, data,
    content type), as the staff function's form names them."""

    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)

    def action_input(self) -> ActionInput:
        """The same, as the services take it."""
        from sapa.services.workflow import ActionInput

        draft = self.files.get("draft")
        fields: dict[str, Any] = dict(self.form)  # its names are ActionInput's
        return ActionInput(**fields, draft_pdf=draft[1] if draft else None)


def step_input(
    event: str, case: Standing, *, passphrase: str = "", draft_pages: int = 1
) -> StepInput:
    """What `event` needs besides the claim and the action itself: step 6 the SIAK reference
    and SIAK's draft PDF, step 8 the head of office's passphrase (a BSrE signer asks for it)."""
    if event == "enter_siak":
        lines = [f"No. {case.reg_no}", "Kepala keluarga: Andi Baso"]
        draft = simple_pdf("KARTU KELUARGA", lines, pages=draft_pages)
        return StepInput(
            {"siak_ref": f"SIAK-{case.reg_no}"},
            {"draft": ("draft.pdf", draft, "application/pdf")},
        )
    if event == "sign" and passphrase:
        return StepInput({"passphrase": passphrase})
    return StepInput()


# Steps the system finishes after the officer asked (the signer signs): event → the audit
# notes that say it was asked, and that it failed for good. While the last of them is the
# request, the system is at work and the walk waits instead of asking again.
ANSWERED_LATER = {"sign": ("sign_requested", "sign_failed")}


# ---- where a case stands, and the desks that act on it ----------------------------------------


@dataclass(frozen=True)
class Standing:
    """Where a case stands as a desk sees it: its state, kecamatan and number, who has claimed
    the waiting step, and its audit trail's event names."""

    state: str
    kecamatan: str
    reg_no: str = ""
    claimed_by: str | None = None
    events: tuple[str, ...] = ()

    @classmethod
    def of_page(cls, page: Mapping[str, Any]) -> Standing:
        """From the staff function's case page (its JSON)."""
        case = page["case"]
        return cls(
            state=str(case["state"]),
            kecamatan=str(case["kecamatan"]),
            reg_no=str(case["reg_no"]),
            claimed_by=page.get("claimed_by"),
            events=tuple(str(e["event"]) for e in page.get("events", ())),
        )

    @classmethod
    def of_case(cls, c: Container, case: Case) -> Standing:
        """From the store."""
        run = case.current_run(c.sop)
        return cls(
            state=case.state,
            kecamatan=case.kecamatan,
            reg_no=case.reg_no,
            claimed_by=run.claimed_by if run else None,
            events=tuple(e.event for e in c.store.events(case.id)),
        )


class Desk(Protocol):
    """Where the walk acts."""

    @property
    def office(self) -> Office: ...

    def look(self, case_id: str) -> Standing:
        """Where the case stands now."""
        ...

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        """`email` does `action`: True once it is known done; False when that is not known
        (an answer lost, a refusal a tolerant desk lets pass): the walk looks again."""
        ...

    def submit(self, case_id: str) -> None:
        """The resident sends the guest-book form."""
        ...

    def settle(self, case_id: str) -> None:
        """After each action of the walk: let the background work it set off run (or drop
        it, as the desk's user wants)."""
        ...

    def wait(self, case_id: str, standing: Standing) -> None:
        """The case waits on the system (`standing`): run its work, or wait a moment; raise
        Stuck when it will not move."""
        ...


class Manner(TypedDict, total=False):
    """How the officers of a walk act: `claim`, whether they claim a step before doing it
    (default True); `passphrase`, the head of office's for a BSrE signer; `draft_pages`, the
    pages of the SIAK draft (default 1)."""

    claim: bool
    passphrase: str
    draft_pages: int


def walk(desk: Desk, case_id: str, until: str, **manner: Unpack[Manner]) -> Standing:
    """Take the case along the happy path until it is in `until` (or past it): each move is
    chosen from where the case stands when the walk looks, officers act (in `manner`), the
    resident sends the form, and the system's moves are waited for."""
    office = desk.office
    order = [m.to_state for m in office.path]
    if until not in order:
        raise ValueError(f"{until!r} is not on the happy path of SOP {office.sop.id}")
    while True:
        s = desk.look(case_id)
        if s.state not in order:
            raise Stuck(f"case {case_id} is {s.state!r}, off the happy path")
        if order.index(s.state) >= order.index(until):
            return s
        move = _next(office, s)
        if office.by_system(move, s.kecamatan) or _at_work(move, s):
            desk.wait(case_id, s)
        elif move.role == office.resident:
            desk.submit(case_id)
            desk.settle(case_id)
        else:
            _officer(desk, case_id, s, move, manner)


def step(desk: Desk, case_id: str, event: str, **manner: Unpack[Manner]) -> bool:
    """One officer's step: wait until the case waits for it, then claim and act; whether it
    was acknowledged. (A walk of one step that never does another's.)"""
    office = desk.office
    move = next((m for m in office.path if m.event == event and m.step is not None), None)
    if move is None:
        raise ValueError(f"{event!r} is no step of SOP {office.sop.id}")
    while True:
        s = desk.look(case_id)
        if s.state == move.from_state and not _at_work(move, s):
            return _officer(desk, case_id, s, move, manner)
        desk.wait(case_id, s)


def _next(office: Office, s: Standing) -> Move:
    return next(m for m in office.path if m.from_state == s.state)


def _at_work(move: Move, s: Standing) -> bool:
    notes = ANSWERED_LATER.get(move.event)
    if notes is None:
        return False
    asked, failed = notes
    last = next((e for e in reversed(s.events) if e in notes), None)
    if last == failed:
        raise DriveError(f"{move.event} failed for good: a person must decide")
    return last == asked


def _officer(desk: Desk, case_id: str, s: Standing, move: Move, manner: Manner) -> bool:
    email = desk.office.officer(move.role, s.kecamatan)
    claim = manner.get("claim", True)
    if claim and s.claimed_by != email and not desk.act(email, case_id, "claim", StepInput()):
        return False
    given = step_input(
        move.event,
        s,
        passphrase=manner.get("passphrase", ""),
        draft_pages=manner.get("draft_pages", 1),
    )
    done = desk.act(email, case_id, move.event, given)
    desk.settle(case_id)
    return done


class ServiceDesk:
    """The walk in-process, through the services (the code the functions call). `submission`
    is the resident's form for a case; `settle` runs (or drops) the queued tasks after each
    action; the officers come from the container's staff directory as it is at each walk."""

    def __init__(
        self,
        c: Container,
        *,
        submission: Callable[[Case], Submission] | None = None,
        settle: Callable[[], object] | None = None,
    ) -> None:
        self.c = c
        self.submission = submission
        self._settle = settle

    @property
    def office(self) -> Office:
        return Office.of(self.c)

    def look(self, case_id: str) -> Standing:
        return Standing.of_case(self.c, self.c.store.get(case_id))

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        from sapa.services import workflow

        staff = self.c.staff.get(email)
        if staff is None:
            raise DriveError(f"{email} is not in the staff directory")
        workflow.perform(self.c, case_id, staff, action, given.action_input())
        return True

    def submit(self, case_id: str) -> None:
        from sapa.services import guestbook, notify

        if self.submission is None:
            raise DriveError("this desk has no resident's form")
        token = notify.link_serializer(self.c).dumps(case_id)
        guestbook.submit(self.c, token, self.submission(self.c.store.get(case_id)))

    def settle(self, case_id: str) -> None:
        if self._settle is not None:
            self._settle()

    def wait(self, case_id: str, standing: Standing) -> None:
        self.settle(case_id)
        if self.look(case_id) == standing:
            raise Stuck(f"case {case_id} waits in {standing.state} and no task moves it")


# ---- over HTTP -------------------------------------------------------------------------------


def session() -> requests.Session:
    """A requests session that ignores proxy settings (the servers are local)."""
    s = requests.Session()
    s.trust_env = False
    return s


class Officer:
    """One officer's browser on the staff function (`root`: its URL, e.g. base + "/staff"),
    reading its JSON answers. Logs in (the dev login) on first use and keeps the session
    cookie and the CSRF token. `send` is the one place requests go out: a subclass may retry
    them, or time them."""

    def __init__(
        self,
        root: str,
        email: str,
        *,
        http: requests.Session | None = None,
        login_headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.root = root.rstrip("/")
        self.email = email
        self.http = http or session()
        self.http.headers["Accept"] = "application/json"
        self.login_headers = dict(login_headers or {})
        self.timeout = timeout
        self.csrf = ""

    def send(self, method: str, path: str, **kw: Any) -> requests.Response | None:
        kw.setdefault("timeout", self.timeout)
        return self.http.request(method, f"{self.root}{path}", **kw)

    def login(self) -> None:
        resp = self.send("POST", "/login", data={"email": self.email}, headers=self.login_headers)
        self.csrf = str(self.checked(resp, "login").json()["csrf"])

    def get(self, path: str) -> dict[str, Any]:
        if not self.csrf:
            self.login()
        return dict(self.checked(self.send("GET", path), f"GET {path}").json())

    def case(self, case_id: str) -> dict[str, Any]:
        return self.get(f"/cases/{case_id}")

    def worklist(self) -> list[dict[str, Any]]:
        return list(self.get("/worklist")["cases"])

    def post(self, case_id: str, action: str, given: StepInput) -> requests.Response | None:
        """POST `action` on the case once; the answer as it is (None: it was lost)."""
        if not self.csrf:
            self.login()
        data = {"csrf": self.csrf, **given.form}
        path = f"/cases/{case_id}/{action}"
        return self.send("POST", path, data=data, files=dict(given.files) or None)

    def act(self, case_id: str, action: str, **form: str) -> dict[str, Any]:
        """`action` with `form`, refused (Refused) unless it succeeded; its JSON answer."""
        resp = self.post(case_id, action, StepInput(dict(form)))
        return dict(self.checked(resp, action).json())

    def checked(self, resp: requests.Response | None, what: str) -> requests.Response:
        if resp is None:
            raise Refused(f"{self.email} {what}: no answer")
        if resp.status_code >= 400:
            raise Refused(f"{self.email} {what}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp

    def close(self) -> None:
        self.http.close()


class HttpDesk:
    """The walk over HTTP: officers (made by `officer`, one per e-mail) act on the staff
    function; the case is looked at by `looker`. `strict`: a refused action raises Refused;
    otherwise it is reported and the walk looks again (a server that comes and goes). While
    the case waits on the system the desk runs `settle` (if any) every `interval` seconds and
    gives up (Stuck) after `timeout` seconds in one state. `report(email, action, status)`
    hears of every action (status None: the answer was lost)."""

    def __init__(
        self,
        office: Office,
        looker: str,
        officer: Callable[[str], Officer],
        *,
        settle: Callable[[], object] | None = None,
        strict: bool = True,
        interval: float = 0.2,
        timeout: float = 60.0,
        report: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        self._office = office
        self.looker = looker
        self._make = officer
        self.officers: dict[str, Officer] = {}
        self._settle = settle
        self.strict = strict
        self.interval = interval
        self.timeout = timeout
        self.report = report
        self._waiting: tuple[str, str] | None = None
        self._since = 0.0

    @property
    def office(self) -> Office:
        return self._office

    def officer(self, email: str) -> Officer:
        if email not in self.officers:
            self.officers[email] = self._make(email)
        return self.officers[email]

    def look(self, case_id: str) -> Standing:
        return Standing.of_page(self.officer(self.looker).case(case_id))

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        resp = self.officer(email).post(case_id, action, given)
        status = None if resp is None else resp.status_code
        if self.report is not None:
            self.report(email, action, status)
        if resp is None:
            return False
        if resp.status_code >= 400:
            if self.strict:
                raise Refused(f"{email} {action}: HTTP {resp.status_code} {resp.text[:300]}")
            if resp.status_code >= 500:
                time.sleep(self.interval)
            return False
        return True

    def submit(self, case_id: str) -> None:
        raise DriveError("the resident's form is sent before an HTTP walk (its link is theirs)")

    def settle(self, case_id: str) -> None:
        if self._settle is not None:
            self._settle()

    def wait(self, case_id: str, standing: Standing) -> None:
        now = time.monotonic()
        if self._waiting != (case_id, standing.state):
            self._waiting, self._since = (case_id, standing.state), now
        elif now - self._since > self.timeout:
            raise Stuck(f"case {case_id} stayed {standing.state} for {self.timeout:g} s")
        time.sleep(self.interval)
        self.settle(case_id)

    def close(self) -> None:
        for o in self.officers.values():
            o.close()
