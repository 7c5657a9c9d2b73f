"""One complete case driven over HTTP, and a WSGI timer that measures what the server spends on it.

`CaseDriver` plays the resident (through the WhatsApp simulator and the guest book) and each
officer (through the staff workspace's JSON answers, walked along the SOP by sapa.dev.driver,
like `sapa.dev.demo`), on a LocalStack whose task worker is OFF: after each step it delivers
the queued tasks itself (`drain`), over HTTP to the stack's `/tasks/<kind>` exactly as the
worker would, or to any other target a benchmark chooses (a separate function instance, say).
So each case runs to `delivered` deterministically and without polling delays.

`ServerTimer` wraps the stack's WSGI app: for every request except the WhatsApp simulator's own
paths (the simulator stands for Meta, it is not SAPA) and requests marked `X-Bench-Untimed`, it
adds the serving thread's CPU time (`time.thread_time`) and the wall time from the call to the
close of the response body. Thread CPU time is what the request cost this machine whatever
else runs; wall time is what a Cloud Function instance would be billed for.
"""

from __future__ import annotations

import io
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from sapa.adapters.embedded.sqlite_queue import LeasedTask, SqliteTaskQueue
from sapa.adapters.embedded.task_worker import TaskWorker
from sapa.dev import demo
from sapa.dev.driver import DriveError, HttpDesk, Office, Officer, Standing, StepInput, session
from sapa.dev.driver import walk as walk_sop
from sapa.dev.localserver import SIMULATOR_PREFIXES, LocalStack

UNTIMED = {"X-Bench-Untimed": "1"}
# The demo's guest book; the desa is the first of the case's kecamatan (CaseDriver.form).
FORM = {k: v for k, v in demo.FORM.items() if k != "desa"}
_PNG = demo._PNG


def category(path: str) -> str:
    """What kind of request a path is: the function it reaches (tasks by kind)."""
    if path.startswith("/tasks/"):
        return "task:" + path.split("/")[2]
    for prefix, name in (
        ("/wa/webhook", "wa_webhook"),
        ("/guestbook", "guestbook"),
        ("/staff", "staff"),
        ("/approval", "approval"),
        ("/verify", "verify"),
        ("/esign/callback", "esign_callback"),
        ("/jobs/", "jobs"),
    ):
        if path.startswith(prefix):
            return name
    return "other"


@dataclass
class Timed:
    category: str
    method: str
    bytes_in: int
    cpu_s: float
    wall_s: float
    status: str


class _Body:
    """The response iterable, timed until waitress closes it (in the serving thread)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


class ServerTimer:
    """WSGI middleware: per request, the serving thread's CPU time and the wall time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.records: list[Timed] = []
        self.inflight = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "") or "/"
        if path.startswith(SIMULATOR_PREFIXES) or environ.get("HTTP_X_BENCH_UNTIMED"):
            return self.app(environ, start_response)
        kind = category(path)
        method = environ.get("REQUEST_METHOD", "GET")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        status = ["?"]

        def start(code: str, headers: Any, *exc: Any) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *exc)

        with self._lock:
            self.inflight += 1
        w0, c0 = time.perf_counter(), time.thread_time()

        def done() -> None:
            rec = Timed(
                kind, method, size, time.thread_time() - c0, time.perf_counter() - w0, status[0]
            )
            with self._lock:
                self.records.append(rec)
                self.inflight -= 1

        try:
            body = self.app(environ, start)
        except BaseException:
            done()
            raise
        return _Body(body, done)

    def mark(self) -> int:
        with self._lock:
            return len(self.records)

    def since(self, mark: int) -> list[Timed]:
        with self._lock:
            return list(self.records[mark:])

    def idle(self) -> bool:
        with self._lock:
            return self.inflight == 0


def simulator_of(stack: LocalStack) -> Any:
    """The WhatsApp simulator's state object inside a LocalStack (None outside local mode)."""
    from sapa.dev.simulator import EXTENSION

    sim_app = getattr(stack.app, "passthrough", None)
    return None if sim_app is None else sim_app.extensions[EXTENSION]


def instrument(stack: LocalStack, *, status_delay: float = 0.0) -> ServerTimer:
    """Time every request `stack`'s server hands to its app (waitress looks the application up
    on its server for each request, so the stack itself is left as it is); make the simulator
    report statuses without delay."""
    timer = ServerTimer(stack.server.application)
    stack.server.application = timer
    sim = simulator_of(stack)
    if sim is not None:
        sim.status_delay = status_delay
    return timer


# Every simulated resident comes from 127.0.0.1 (and the local server drops X-Forwarded-For),
# where in life each has their own phone: benchmarks lift the guest book's per-client rate limit
# so that it limits nobody. It still runs, and its cost is measured.
UNLIMITED = {"guestbook_rate_per_minute": 1_000_000}


DriveFailed = DriveError


def _ok(resp: requests.Response, what: str) -> requests.Response:
    if resp.status_code >= 400:
        raise DriveFailed(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp


# Deliver one leased task; True if it was answered 2xx.
Deliver = Callable[[LeasedTask], bool]


@dataclass
class CaseResult:
    wa_id: str
    kecamatan: str
    case_id: str = ""
    reg_no: str = ""
    state: str = ""
    tasks: dict[str, int] = field(default_factory=dict)


class CaseDriver:
    """Drives cases through all eight SOP steps on a LocalStack started with worker=False."""

    def __init__(
        self, stack: LocalStack, *, draft_pages: int = 1, timer: ServerTimer | None = None
    ) -> None:
        from sapa.adapters.pdf import simple_pdf

        self.stack = stack
        self.base = stack.base_url
        queue = stack.c.queue
        assert isinstance(queue, SqliteTaskQueue)
        self.queue = queue
        self.worker = TaskWorker(
            queue, stack.c.settings.task_base, stack.c.settings.secret("task_token")
        )
        self.http = session()
        self._worker_http = session()
        self.office = Office.of(stack.c)
        self.officers: dict[str, Officer] = {}
        self.desa = {code: names[0].name for code, names in stack.c.desa.items() if names}
        self.nikah_pdf = simple_pdf("Buku Nikah", ["Salinan buku nikah pemohon (contoh)"])
        self.draft_pages = draft_pages
        self.timer = timer  # when timed: a request still being served means "not settled"
        self._simple_pdf = simple_pdf
        # Which handler takes a task of a given kind (default: the stack, over HTTP).
        self.routes: dict[str, Deliver] = {}

    def officer(self, email: str) -> Officer:
        if email not in self.officers:
            # logging in is not the case's work: untimed
            self.officers[email] = Officer(f"{self.base}/staff", email, login_headers=UNTIMED)
        return self.officers[email]

    def loket(self, kecamatan: str) -> Officer:
        """The officer who finds a new case of `kecamatan` first (the counter)."""
        return self.officer(self.office.first_officer(kecamatan))

    # -- tasks --------------------------------------------------------------------------------

    def drain(self, counts: dict[str, int] | None = None, *, settle: float = 5.0) -> None:
        """Deliver every due task (and those the deliveries queue) until the queue is empty,
        the simulator has reported every status and no timed request is in flight."""
        deadline = time.monotonic() + settle
        sim = simulator_of(self.stack)
        quiet = 0
        while True:
            leased = self.queue.lease(1, self.worker.lease_seconds)
            for task in leased:
                route = self.routes.get(task.kind)
                if route is not None:
                    route(task)
                else:
                    self.worker.deliver(task, self._worker_http)
                if counts is not None:
                    counts[task.kind] = counts.get(task.kind, 0) + 1
            if leased:
                quiet = 0
                continue
            timer = self.timer
            busy = (sim is not None and not sim._statuses.empty()) or (
                timer is not None and not timer.idle()
            )
            quiet = 0 if busy else quiet + 1
            # The simulator's status thread may hold a status it took off its queue: a few
            # quiet looks in a row before calling the case settled.
            if quiet >= 8 or time.monotonic() > deadline:
                return
            time.sleep(0.005)

    # -- the resident ---------------------------------------------------------------------------

    def say(self, wa_id: str, kecamatan: str, text: str, *, name: str = "Andi Baso") -> None:
        resp = self.http.post(
            f"{self.base}/dev/wa/api/send",
            json={
                "phone_number_id": f"demo-{kecamatan}",
                "from": wa_id,
                "name": name,
                "text": text,
            },
            timeout=30,
        )
        if _ok(resp, "send").json().get("webhook_status") != 200:
            raise DriveFailed(f"the webhook refused {text!r}: {resp.text[:200]}")

    def send_photo(self, wa_id: str, kecamatan: str, data: bytes, filename: str) -> None:
        resp = self.http.post(
            f"{self.base}/dev/wa/api/send",
            data={"phone_number_id": f"demo-{kecamatan}", "from": wa_id, "name": "Andi Baso"},
            files={"file": (filename, io.BytesIO(data), "image/jpeg")},
            timeout=60,
        )
        if _ok(resp, "send photo").json().get("webhook_status") != 200:
            raise DriveFailed(f"the webhook refused a photo: {resp.text[:200]}")

    def link(self, wa_id: str, kecamatan: str) -> str:
        resp = self.http.post(
            f"{self.base}/dev/wa/api/conversation",
            json={"phone_number_id": f"demo-{kecamatan}", "wa_id": wa_id},
            timeout=30,
        )
        for m in reversed(_ok(resp, "conversation").json()["messages"]):
            found = re.search(r"https?://\S+/guestbook/f/\S+", m.get("text") or "")
            if m["direction"] == "out" and found:
                return found.group(0)
        raise DriveFailed(f"no guest-book link for {wa_id[:5]}… in the conversation")

    def form(self, kecamatan: str) -> dict[str, str]:
        return {**FORM, "desa": self.desa[kecamatan]}

    def submit(
        self, url: str, kecamatan: str, kk_photo: tuple[str, bytes, str] | None = None
    ) -> str:
        name, data, mime = kk_photo or ("kk.png", _PNG, "image/png")
        _ok(self.http.get(url, timeout=30), "open guest book")
        resp = self.http.post(
            url,
            data=self.form(kecamatan),
            headers={"Accept": "application/json"},
            timeout=60,
            files={
                "doc_kk_lama": (name, io.BytesIO(data), mime),
                "doc_buku_nikah": ("nikah.pdf", io.BytesIO(self.nikah_pdf), "application/pdf"),
            },
        )
        return str(_ok(resp, "submit guest book").json()["reg_no"])

    def case_id_of(self, url: str) -> str:
        from sapa.services import guestbook

        token = url.rstrip("/").rsplit("/", 1)[1]
        return guestbook.resolve(self.stack.c, token).id

    # -- one case -------------------------------------------------------------------------------

    def walk(self, case_id: str, desk: HttpDesk | None = None) -> None:
        """The officers' steps 3–8 and the delivery (`desk`: default, a `CaseDesk`)."""
        walk_sop(desk or CaseDesk(self), case_id, "delivered", draft_pages=self.draft_pages)

    def run_case(self, kecamatan: str = "730608", *, wa_id: str | None = None) -> CaseResult:
        """Steps 1–8 and delivery of one new case; every task delivered before returning."""
        wa_id = wa_id or "62813" + "".join(secrets.choice("0123456789") for _ in range(8))
        r = CaseResult(wa_id, kecamatan)
        self.say(wa_id, kecamatan, "Assalamualaikum, mau urus KK")
        self.drain(r.tasks)
        url = self.link(wa_id, kecamatan)
        r.reg_no = self.submit(url, kecamatan)
        self.drain(r.tasks)
        r.case_id = self.case_id_of(url)
        self.walk(r.case_id, CaseDesk(self, r.tasks))
        r.state = self.stack.c.store.get(r.case_id).state
        return r

    def close(self) -> None:
        self.http.close()
        self._worker_http.close()
        for o in self.officers.values():
            o.close()


class CaseDesk(HttpDesk):
    """The walk of a `CaseDriver`: its officers act over HTTP, each opening the case file
    before taking the step (with `opens_case`); the tasks are drained after each action
    (`counts` counts them by kind, `settle` as in `drain`). Where the case stands is read from
    the store, so looking costs the server nothing and the timer sees only the officers."""

    def __init__(
        self,
        driver: CaseDriver,
        counts: dict[str, int] | None = None,
        *,
        settle: float = 5.0,
        opens_case: bool = True,
    ) -> None:
        super().__init__(
            driver.office,
            "",
            driver.officer,
            settle=lambda: driver.drain(counts, settle=settle),
            interval=0.01,
            timeout=10.0,
        )
        self.c = driver.stack.c
        self.opens_case = opens_case

    def look(self, case_id: str) -> Standing:
        return Standing.of_case(self.c, self.c.store.get(case_id))

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        if action == "claim" and self.opens_case:
            self.officer(email).case(case_id)  # the officer opens the case file before acting
        return super().act(email, case_id, action, given)
