"""Function tests: every Cloud Function driven in-process through functions-framework's test
client, over the shared `container` fixture (tmp data dir, FixedClock, RecordingQueue).

Helpers here build Meta webhook bodies, deliver queue tasks the way Cloud Tasks does, log
officers in to the staff function, and walk a case through the SOP with sapa.dev.driver, through
the services themselves (so a case "in state X" is one the real code produced) or through the
functions (`FlaskDesk`), with tests/fakes.py's WhatsApp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from sapa.adapters.meta_webhook import InboundMessage, sign_body
from sapa.adapters.pdf import simple_pdf
from sapa.bootstrap import Container
from sapa.dev.driver import Office, ServiceDesk, Standing, StepInput, walk
from sapa.domain.case import Actor, Case
from sapa.ports import Task
from sapa.services import guestbook, intake, notify, signing, workflow
from sapa.services.guestbook import Submission, Upload
from sapa.services.workflow import ActionInput
from tests.conftest import ROOT, RecordingQueue
from tests.fakes import FakeWhatsApp

SOURCE = str(ROOT / "functions" / "main.py")

SOMBA_OPU = "730608"
BONTONOMPO = "730601"
WA_ID = "6281234567890"
OTHER_WA_ID = "6285298765432"
# A NIK of Somba Opu for a man born 15 Aug 1990, and a KK issued 1 Jan 2020.
NIK = "7306081508900001"
BIRTH_DATE = "1990-08-15"
KK = "7306080101200001"


# ---- files ------------------------------------------------------------------------------------


def tiny_png() -> bytes:
    """A real 1×1 RGB PNG (valid chunks and CRCs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiny_pdf(title: str = "Kartu Keluarga") -> bytes:
    return simple_pdf(title, ["Dokumen uji SAPA."])


# ---- functions-framework clients --------------------------------------------------------------


_APPS: dict[str, Any] = {}


def app_for(target: str) -> Any:
    """One functions-framework app per entry point for the whole session: the functions look
    their container up on every request, so an app is independent of the test's container."""
    if target not in _APPS:
        _APPS[target] = create_app(target=target, source=SOURCE)
    return _APPS[target]


@pytest.fixture
def client_for(container: Container) -> Callable[[str], FlaskClient]:
    """`client_for("wa_webhook")`: a fresh test client (own cookie jar) of that function."""

    def make(target: str) -> FlaskClient:
        return app_for(target).test_client()

    return make


# ---- officers on the staff function's test client -------------------------------------------

JSON = {"Accept": "application/json"}


class Officer:
    """One officer's browser on the staff function's test client (it keeps the session
    cookie), logged in at once; `login` is the login's answer."""

    def __init__(self, client: FlaskClient, email: str) -> None:
        self.client = client
        self.email = email
        self.login = client.post("/login", data={"email": email}, headers=JSON)
        assert self.login.status_code == 200, self.login.get_data(as_text=True)
        self.csrf: str = self.login.get_json()["csrf"]

    def post(self, path: str, *, csrf: bool = True, json: bool = True, **form: Any) -> Any:
        """POST a form with the officer's CSRF token (`csrf=False`: without it)."""
        data = {**form, **({"csrf": self.csrf} if csrf else {})}
        return self.client.post(path, data=data, headers=JSON if json else {})

    def act(
        self, case: Case | str, action: str, *, csrf: bool = True, json: bool = True, **form: Any
    ) -> Any:
        """An action on the case, posted like the case page's forms (multipart)."""
        case_id = case if isinstance(case, str) else case.id
        data = {**form, **({"csrf": self.csrf} if csrf else {})}
        return self.client.post(
            f"/cases/{case_id}/{action}",
            data=data,
            headers=JSON if json else {},
            content_type="multipart/form-data",
        )

    def get(self, path: str, *, json: bool = True) -> Any:
        return self.client.get(path, headers=JSON if json else {})

    def worklist(self, **query: str) -> list[dict[str, Any]]:
        resp = self.client.get("/worklist", query_string=query, headers=JSON)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return list(resp.get_json()["cases"])

    def case(self, case_id: str) -> dict[str, Any]:
        resp = self.get(f"/cases/{case_id}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return dict(resp.get_json())


@pytest.fixture
def login(container: Container) -> Callable[[str], Officer]:
    """`login(email)`: that officer, logged in on a fresh client of the staff function."""
    return lambda email: Officer(app_for("staff").test_client(), email)


class FlaskDesk:
    """sapa.dev.driver's walk through the functions' test clients: officers act on the staff
    function, the resident posts the guest book to its function, and `settle` does what runs
    in the background (delivering the queued tasks, say)."""

    def __init__(
        self, c: Container, login: Callable[[str], Officer], settle: Callable[[], object]
    ) -> None:
        self.c = c
        self._login = login
        self._settle = settle
        self.officers: dict[str, Officer] = {}

    @property
    def office(self) -> Office:
        return Office.of(self.c)

    def officer(self, email: str) -> Officer:
        if email not in self.officers:
            self.officers[email] = self._login(email)
        return self.officers[email]

    def look(self, case_id: str) -> Standing:
        kecamatan = self.c.store.get(case_id).kecamatan
        return Standing.of_page(self.officer(self.office.first_officer(kecamatan)).case(case_id))

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        files = {k: (BytesIO(data), name) for k, (name, data, _) in given.files.items()}
        resp = self.officer(email).act(case_id, action, **given.form, **files)
        assert resp.status_code == 200, (email, action, resp.get_data(as_text=True))
        return True

    def submit(self, case_id: str) -> None:
        token = notify.link_serializer(self.c).dumps(case_id)
        data: dict[str, Any] = dict(valid_fields())
        for key, upload in valid_files().items():
            data[f"doc_{key}"] = (BytesIO(upload.data), upload.filename)
        resp = app_for("guestbook").test_client().post(f"/f/{token}", data=data, headers=JSON)
        assert resp.status_code == 200, resp.get_data(as_text=True)

    def settle(self, case_id: str) -> None:
        self._settle()

    def wait(self, case_id: str, standing: Standing) -> None:
        self._settle()
        assert self.look(case_id) != standing, f"nothing moves the case on from {standing}"


# ---- Meta webhook bodies ----------------------------------------------------------------------

TS = str(int(datetime(2026, 11, 29, 1, 0, tzinfo=UTC).timestamp()))


def text_message(wamid: str, body: str, *, wa_id: str = WA_ID) -> dict[str, Any]:
    return {"from": wa_id, "id": wamid, "timestamp": TS, "type": "text", "text": {"body": body}}


def change(
    messages: list[dict[str, Any]],
    *,
    phone_number_id: str = f"demo-{SOMBA_OPU}",
    contacts: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100000000", "phone_number_id": phone_number_id},
        "messages": messages,
    }
    value["contacts"] = (
        contacts
        if contacts is not None
        else [{"profile": {"name": "Andi Baso"}, "wa_id": m["from"]} for m in messages[:1]]
    )
    if statuses is not None:
        value["statuses"] = statuses
    return {"field": "messages", "value": value}


def webhook_body(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """`entries` entries sharing the changes round-robin (one entry: all of them)."""
    per: list[list[dict[str, Any]]] = [[] for _ in range(entries)]
    for i, ch in enumerate(changes):
        per[i % entries].append(ch)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": f"waba-{i}", "changes": chs} for i, chs in enumerate(per)],
    }


def text_body(wamid: str, body: str, *, wa_id: str = WA_ID, kecamatan: str = SOMBA_OPU) -> bytes:
    return json.dumps(
        webhook_body(
            change([text_message(wamid, body, wa_id=wa_id)], phone_number_id=f"demo-{kecamatan}")
        )
    ).encode()


@pytest.fixture
def post_webhook(
    container: Container, client_for: Callable[[str], FlaskClient]
) -> Callable[..., Any]:
    """`post_webhook(raw_or_dict, signature=<default: valid>)` → response."""
    client = client_for("wa_webhook")
    secret = container.settings.secret("wa_app_secret")
    default = object()

    def post(body: bytes | dict[str, Any], signature: Any = default) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        sig = sign_body(secret, raw) if signature is default else signature
        if sig is not None:
            headers["X-Hub-Signature-256"] = sig
        return client.post("/", data=raw, headers=headers)

    return post


# ---- Cloud Tasks deliveries -------------------------------------------------------------------


@pytest.fixture
def run_task(container: Container, client_for: Callable[[str], FlaskClient]) -> Callable[..., Any]:
    """`run_task(kind, payload, name, token=<default: right>)`: POST like Cloud Tasks does."""
    default = object()

    def run(
        kind: str, payload: Any, name: str = "task-1", token: Any = default, retry: int = 0
    ) -> Any:
        headers = {
            "Content-Type": "application/json",
            "X-CloudTasks-QueueName": kind,
            "X-CloudTasks-TaskName": name,
            "X-CloudTasks-TaskRetryCount": str(retry),
        }
        bearer = container.settings.secret("task_token") if token is default else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return client_for(kind).post("/", data=raw, headers=headers)

    return run


def deliver_task(run: Callable[..., Any], task: Task) -> Any:
    return run(task.kind, task.payload, task.name or "unnamed")


# ---- store snapshots --------------------------------------------------------------------------


def all_cases(c: Container) -> list[Case]:
    return c.store.list_cases(limit=10_000)


def blob_files(c: Container) -> list[Path]:
    root = c.settings.sapa_data_dir / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def snapshot(c: Container, case_id: str) -> dict[str, Any]:
    """Everything a request could change about one case. Left out: the version, and the outbox
    (bookkeeping of tasks on their way to the queue: see services.unit.mutate)."""
    case = c.store.get(case_id)
    return {
        "case": case.model_dump(mode="json", exclude={"version", "outbox"}),
        "events": [e.model_dump(mode="json") for e in c.store.events(case_id)],
        "messages": [(m.id, m.direction, m.body) for m in c.store.messages(case_id)],
    }


# ---- driving a case through the SOP with the services ---------------------------------------


@dataclass
class Flow:
    """Walks cases along the SOP through the services (the same code the functions call) with
    sapa.dev.driver: the guest-book link task runs, every other task is dropped, so a case "in
    state X" carries nothing but what the officers' steps themselves did."""

    c: Container
    wa: FakeWhatsApp
    queue: RecordingQueue
    _n: int = 0

    def _wamid(self) -> str:
        self._n += 1
        return f"wamid.flow.{self._n}"

    @property
    def desk(self) -> ServiceDesk:
        return ServiceDesk(self.c, submission=self.submission, settle=self._settle)

    def _settle(self) -> None:
        """Run the queued guest-book link (SOP step 2 by the system); drop the other tasks."""
        for task in self.queue.take():
            if task.kind == "notify" and task.payload.get("kind") == "guestbook_link":
                notify.notify(self.c, task.payload, task.name or "")

    def greet(
        self,
        *,
        wa_id: str = WA_ID,
        kecamatan: str = SOMBA_OPU,
        name: str = "Andi Baso",
        text: str = "Halo",
    ) -> Case:
        """SOP step 1 through intake (the message is stored, the link task queued)."""
        m = InboundMessage(
            wamid=self._wamid(),
            phone_number_id=f"demo-{kecamatan}",
            wa_id=wa_id,
            profile_name=name,
            at=self.c.clock.now(),
            type="text",
            text=text,
        )
        intake.receive(self.c, [m], [])
        case = self.c.store.find_open(kecamatan, wa_id)
        assert case is not None
        return case

    def send_link(self, case: Case) -> Case:
        """SOP step 2 by the system: run the queued notify task(s) of the link."""
        self._settle()
        case = self.c.store.get(case.id)
        assert case.state == "link_sent"
        return case

    def token(self, case: Case) -> str:
        return notify.link_serializer(self.c).dumps(case.id)

    def submission(self, case: Case) -> Submission:
        """A valid guest book for the case (the address names a desa of its kecamatan)."""
        desa = {} if case.kecamatan == SOMBA_OPU else {"desa": self.c.desa[case.kecamatan][0].name}
        return Submission(valid_fields(**desa), valid_files())

    def submit(self, case: Case) -> Case:
        case = guestbook.submit(self.c, self.token(case), self.submission(case))
        self.queue.take()
        return case

    def act(self, case: Case, email: str, action: str, **data: Any) -> Case:
        staff = self.c.staff.get(email)
        assert staff is not None
        case = workflow.perform(self.c, case.id, staff, action, ActionInput(**data))
        self.queue.take()
        return case

    def loket_of(self, kecamatan: str) -> str:
        """The e-mail of the demo counter officer of `kecamatan`."""
        return Office.of(self.c).officer("loket", kecamatan)

    def to(self, state: str, **who: Any) -> Case:
        """A new case (greeted by `who`) taken along the happy path until `state`."""
        case = self.greet(**who)
        walk(self.desk, case.id, state, claim=False)
        self.queue.take()
        case = self.c.store.get(case.id)
        assert case.state == state, (case.state, state)
        return case

    def callback_body(self, case: Case, pdf: bytes | None = None) -> dict[str, Any]:
        """What an asynchronous signer posts back for the case's approved draft."""
        signed = pdf if pdf is not None else tiny_pdf("KTP-el bertanda tangan")
        return {
            "case_id": case.id,
            "document_id": signing.document_id(case),
            "signature_id": "sig-0001",
            "signed_at": self.c.clock.now().isoformat(),
            "pdf_base64": base64.b64encode(signed).decode(),
            "actor": Actor(id="kadis@sapa.test", role="kadis", name="Kepala Dinas").model_dump(),
        }

    def sign(self, case: Case) -> Case:
        body = self.callback_body(case)
        assert signing.complete_signature(
            self.c,
            case.id,
            body["document_id"],
            base64.b64decode(body["pdf_base64"]),
            body["signature_id"],
            self.c.clock.now(),
            Actor.model_validate(body["actor"]),
        )
        return self.c.store.get(case.id)


def valid_fields(**over: str) -> dict[str, str]:
    fields = {
        "service": "ktp_el",
        "name": "Andi Baso",
        "nik": NIK,
        "kk": KK,
        "birth_date": BIRTH_DATE,
        "desa": "Sungguminasa",
        "address": "Jl. Masjid Raya No. 1",
        "wa_number": "081234567890",
        "consent": "1",
    }
    fields.update(over)
    return fields


def valid_files() -> dict[str, Upload]:
    return {"kk": Upload("kk.png", tiny_png()), "ktp_lama": Upload("ktp.pdf", tiny_pdf())}


@pytest.fixture
def flow(container: Container, wa: FakeWhatsApp, queue: RecordingQueue) -> Iterator[Flow]:
    yield Flow(container, wa, queue)


def esign_signature(c: Container, raw: bytes) -> str:
    secret = c.settings.secret("esign_callback_secret").encode()
    return "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
