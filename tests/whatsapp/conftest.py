"""The WhatsApp channel against the real simulator: a LocalStack on a loopback port whose
Graph API is the development simulator (no patched client), with a FixedClock for the 24-hour
window and the durable SQLite queue delivering tasks over HTTP.

The worker is NOT started by default: `rig.drain()` delivers what is due with the queue's own
`TaskWorker.deliver` (real HTTP, real retry counts and backoff) so a test knows when every task
has run; `rig.stack.start_worker()` runs the background worker instead.

The resident's messages are posted by `rig.say(...)`/`rig.webhook(...)` as Meta would (signed,
timestamped by the FixedClock), or typed into the simulator's chat API (`rig.sim_send`, which
timestamps with the real time: use it only while the clock is near the real time).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from sapa import bootstrap
from sapa.adapters.clock import FixedClock
from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue
from sapa.adapters.embedded.task_worker import TaskWorker
from sapa.adapters.meta_webhook import sign_body
from sapa.bootstrap import Container
from sapa.dev.driver import ServiceDesk, walk
from sapa.dev.localserver import LocalStack
from sapa.dev.simulator import EXTENSION, WaSimulator
from sapa.domain.case import Actor, AuditEvent, Case
from sapa.domain.values import BSUID
from sapa.ports import Message
from sapa.services import signing
from sapa.services.guestbook import Submission
from sapa.settings import load_settings
from tests.functions.conftest import tiny_pdf, valid_fields, valid_files

SOMBA_OPU = "730608"
BONTONOMPO = "730601"
PNID = f"demo-{SOMBA_OPU}"
PNID_B = f"demo-{BONTONOMPO}"
WA_ID = "6281234567890"
OTHER_WA_ID = "6285298765432"
MAX_ATTEMPTS = 4
DAY = 24 * 3600


@dataclass
class Delivery:
    """One HTTP delivery of a task by the queue's worker, as the function answered it."""

    kind: str
    name: str
    payload: dict[str, Any]
    retry: int
    status: int
    body: Any


class _RecordingSession(requests.Session):
    """A requests session that keeps every task delivery's answer (the worker's own POST)."""

    def __init__(self, log: list[Delivery]) -> None:
        super().__init__()
        self.trust_env = False
        self._log = log

    def post(self, url: Any, data: Any = None, json: Any = None, **kw: Any) -> Any:
        resp = super().post(url, data=data, json=json, **kw)
        headers = kw.get("headers") or {}
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        self._log.append(
            Delivery(
                kind=str(headers.get("X-CloudTasks-QueueName", "")),
                name=str(headers.get("X-CloudTasks-TaskName", "")),
                payload=_loads(data),
                retry=int(headers.get("X-CloudTasks-TaskRetryCount", "0")),
                status=resp.status_code,
                body=body,
            )
        )
        return resp


def _loads(data: Any) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class Rig:
    stack: LocalStack
    clock: FixedClock
    http: requests.Session
    deliveries: list[Delivery] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ---- the parts --------------------------------------------------------------------------

    @property
    def c(self) -> Container:
        return self.stack.c

    @property
    def base(self) -> str:
        return self.stack.base_url

    @property
    def queue(self) -> SqliteTaskQueue:
        q = self.c.queue
        assert isinstance(q, SqliteTaskQueue)
        return q

    @property
    def sim(self) -> WaSimulator:
        sim = self.stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
        assert isinstance(sim, WaSimulator)
        return sim

    # ---- Meta's side: webhooks ------------------------------------------------------------

    def wamid(self, prefix: str = "wamid.IN") -> str:
        return f"{prefix}{next(self._ids):04d}"

    def ts(self, at: datetime | None = None) -> str:
        return str(int((at or self.clock.now()).timestamp()))

    def webhook(self, body: dict[str, Any] | bytes, *, signature: str | None = "") -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "":
            signature = sign_body(self.c.settings.secret("wa_app_secret"), raw)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.http.post(f"{self.base}/wa/webhook", data=raw, headers=headers, timeout=30)

    def message(
        self, type_: str, content: Any = None, *, wa_id: str = WA_ID, wamid: str | None = None
    ) -> dict[str, Any]:
        m: dict[str, Any] = {
            # a resident known by username comes with their business-scoped user id only
            ("from_user_id" if is_bsuid(wa_id) else "from"): wa_id,
            "id": wamid or self.wamid(),
            "timestamp": self.ts(),
            "type": type_,
        }
        if content is not None:
            m[type_] = content
        return m

    def say(
        self,
        text: str,
        *,
        wa_id: str = WA_ID,
        pnid: str = PNID,
        wamid: str | None = None,
        name: str = "Andi Baso",
    ) -> str:
        """The resident writes `text`; Meta posts it (signed) to the webhook. Returns the wamid."""
        m = self.message("text", {"body": text}, wa_id=wa_id, wamid=wamid)
        who = contact(None, name, user_id=wa_id) if is_bsuid(wa_id) else contact(wa_id, name)
        resp = self.webhook(envelope(change(pnid, [m], contacts=[who])))
        assert resp.status_code == 200, resp.text
        return str(m["id"])

    # ---- the simulator ----------------------------------------------------------------------

    def sim_send(
        self, *, wa_id: str = WA_ID, pnid: str = PNID, text: str = "", file: Any = None
    ) -> dict[str, Any]:
        """The resident types into the simulator's chat page API (real-time timestamps)."""
        url = f"{self.base}/dev/wa/api/send"
        fields = {"phone_number_id": pnid, "from": wa_id, "name": "Andi Baso"}
        if file is None:
            resp = self.http.post(url, json={**fields, "text": text}, timeout=30)
        else:
            resp = self.http.post(url, data={**fields, "caption": text}, files=file, timeout=30)
        answer: dict[str, Any] = resp.json()
        return answer

    def conversation(self, wa_id: str = WA_ID, pnid: str = PNID) -> list[dict[str, Any]]:
        resp = self.http.post(
            f"{self.base}/dev/wa/api/conversation",
            json={"phone_number_id": pnid, "wa_id": wa_id},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        messages: list[dict[str, Any]] = resp.json()["messages"]
        return messages

    def received(self, wa_id: str = WA_ID, pnid: str = PNID) -> list[dict[str, Any]]:
        """What the simulator's Graph API accepted for the resident (our outbound messages)."""
        return [m for m in self.conversation(wa_id, pnid) if m["direction"] == "out"]

    def graph_request(self, wamid: str) -> dict[str, Any]:
        """The JSON body our client POSTed to the Graph API for the message `wamid`."""
        row = self.sim.store.message(wamid)
        assert row is not None, wamid
        body: dict[str, Any] = json.loads(row["payload"])
        return body

    def upload(self, data: bytes, mime_type: str, *, pnid: str = PNID, name: str = "f") -> str:
        """Put media in the simulator the way the resident's phone would (Graph upload)."""
        resp = self.http.post(
            f"{self.c.settings.wa_base}/{pnid}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (name, data, mime_type)},
            headers={"Authorization": f"Bearer {self.c.settings.secret('wa_token')}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["id"])

    def faults(self, status: int, count: int) -> dict[str, Any]:
        resp = self.http.post(
            f"{self.base}/sim/control/faults", json={"status": status, "count": count}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        state: dict[str, Any] = resp.json()
        return state

    def fault_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.base}/sim/control/faults", timeout=30).json()
        return state

    # ---- the queue ----------------------------------------------------------------------------

    def pending_tasks(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, name, payload) of every task still in the durable queue, oldest first."""
        with sqlite3.connect(self.queue.path) as db:
            rows = db.execute("SELECT kind, name, payload FROM tasks ORDER BY id").fetchall()
        return [(k, n, json.loads(p)) for k, n, p in rows]

    def drain(self, timeout: float = 20.0) -> list[Delivery]:
        """Deliver every due task (and the retries they schedule) with the queue's worker until
        nothing is due or scheduled; tasks leased by someone else are left alone."""
        worker = TaskWorker(
            self.queue, self.c.settings.task_base, self.c.settings.secret("task_token")
        )
        start = len(self.deliveries)
        deadline = time.monotonic() + timeout
        with _RecordingSession(self.deliveries) as session:
            while True:
                leased = self.queue.lease(1, 60.0)
                for task in leased:
                    worker.deliver(task, session)
                if leased:
                    continue
                stats = self.queue.stats()
                if stats.due == 0 and stats.scheduled == 0:
                    break
                assert time.monotonic() < deadline, f"queue did not drain: {stats}"
                time.sleep(0.02)
        return self.deliveries[start:]

    def post_task(self, kind: str, payload: dict[str, Any], name: str, *, retry: int = 0) -> Any:
        """POST one task to its function exactly as Cloud Tasks does (any retry count)."""
        return self.http.post(
            f"{self.c.settings.task_base}/tasks/{kind}",
            data=json.dumps(payload),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.c.settings.secret('task_token')}",
                "X-CloudTasks-QueueName": kind,
                "X-CloudTasks-TaskName": name,
                "X-CloudTasks-TaskRetryCount": str(retry),
            },
            timeout=30,
        )

    # ---- SAPA's state -----------------------------------------------------------------------

    def case_of(self, wa_id: str = WA_ID, kecamatan: str = SOMBA_OPU) -> Case:
        case = self.c.store.find_open(kecamatan, wa_id)
        assert case is not None, (kecamatan, wa_id)
        return case

    def events(self, case_id: str, name: str | None = None) -> list[AuditEvent]:
        return [e for e in self.c.store.events(case_id) if name is None or e.event == name]

    def messages(self, case_id: str, direction: str | None = None) -> list[Message]:
        found = self.c.store.messages(case_id)
        return [m for m in found if direction is None or m.direction == direction]

    def snapshot(self, case_id: str) -> dict[str, Any]:
        case = self.c.store.get(case_id)
        return {
            "case": case.model_dump(mode="json", exclude={"version", "outbox"}),
            "events": [e.model_dump(mode="json") for e in self.c.store.events(case_id)],
            "messages": [
                (m.id, m.direction, m.body, m.status) for m in self.c.store.messages(case_id)
            ],
        }

    # ---- a case along the SOP -----------------------------------------------------------------

    def greet(self, wa_id: str = WA_ID) -> Case:
        """SOP steps 1 and 2: the resident greets, the guest-book link goes out."""
        self.say("Halo", wa_id=wa_id)
        self.drain()
        case = self.case_of(wa_id)
        assert case.state == "link_sent"
        return case

    def approved(self, wa_id: str = WA_ID) -> Case:
        """A case taken by the services (and its tasks by the queue) to `approved`."""
        case = self.greet(wa_id)
        desk = ServiceDesk(
            self.c,
            submission=lambda _: Submission(valid_fields(), valid_files()),
            settle=self.drain,
        )
        walk(desk, case.id, "approved", claim=False)
        case = self.c.store.get(case.id)
        assert case.state == "approved"
        return case

    def sign(self, case: Case) -> Case:
        """The signer's answer for the approved draft (its deliver task is queued, not run)."""
        assert signing.complete_signature(
            self.c,
            case.id,
            signing.document_id(case),
            tiny_pdf("KTP-el bertanda tangan"),
            "sig-0001",
            self.clock.now(),
            Actor(id="kadis@sapa.test", role="kadis", name="Kepala Dinas"),
        )
        return self.c.store.get(case.id)


# ---- webhook bodies ---------------------------------------------------------------------------


def is_bsuid(wa_id: str) -> bool:
    """A business-scoped user id (a resident known by username), e.g. ID.7306123456789."""
    return bool(BSUID.match(wa_id))


def contact(wa_id: str | None, name: str = "Andi Baso", **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"profile": {"name": name}, **extra}
    if wa_id is not None:
        c["wa_id"] = wa_id
    return c


def change(
    pnid: str,
    messages: list[dict[str, Any]] | None = None,
    *,
    contacts: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "62411000008", "phone_number_id": pnid},
    }
    if messages is not None:
        value["messages"] = messages
    if contacts is not None:
        value["contacts"] = contacts
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def envelope(*changes: dict[str, Any], entries: list[list[dict[str, Any]]] | None = None) -> Any:
    groups = entries if entries is not None else [list(changes)]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": f"WABA{i}", "changes": chs} for i, chs in enumerate(groups)],
    }


def status(wamid: str, state: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": wamid,
        "status": state,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": WA_ID,
        **extra,
    }


def b64_sha256(data: bytes) -> str:
    """The form Meta's webhooks use for a media sha256 (base64 of the digest)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


# ---- fixtures ---------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A LocalStack (simulator included) on a random loopback port, its clock a FixedClock at
    the real time (the simulator stamps its own messages with the real time), fast retries."""
    settings = load_settings(
        sapa_data_dir=tmp_path / "var",
        task_max_attempts=MAX_ATTEMPTS,
        task_min_backoff_seconds=0.02,
        task_max_backoff_seconds=0.1,
    )
    stack = LocalStack(settings)
    clock = FixedClock(_now())
    # LocalStack installed stack.c as the process's container; the clock is built lazily, so
    # setting it before start is what the webhook and the task functions see (container()).
    stack.c.clock = clock  # type: ignore[misc]
    stack.start(worker=False)
    http = requests.Session()
    http.trust_env = False
    try:
        yield Rig(stack, clock, http)
    finally:
        http.close()
        # The simulator's status thread: end it now instead of leaving it to post statuses
        # to a server that is gone.
        sim = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
        sim.send_statuses, sim.status_delay = False, 0.0
        sim.close()
        stop(stack)


def stop(stack: LocalStack) -> None:
    """`stack.stop()`, tolerating its race with waitress (reported): stop() queues close_all
    with `trigger.pull_trigger(close_all)`, which appends the thunk and then writes to the
    trigger pipe; if the server loop is already reading the trigger (a request just finished),
    it runs close_all, which closes the trigger, before stop() writes: EBADF. The server is
    closed all the same; what stop() did not get to is done here."""
    try:
        stack.stop()
    except OSError:
        thread = stack._thread
        if thread is not None:
            thread.join(timeout=5)
        bootstrap.install(None)
    # waitress does not stop a closed server's 16 task threads (they keep thread-local SQLite
    # connections to this test's files open): end them.
    stack.server.task_dispatcher.shutdown(timeout=5)
