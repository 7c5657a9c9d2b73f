"""Function tests: every Cloud Function driven in-process through functions-framework's test
client, over the shared `container` fixture (tmp data dir, FixedClock, RecordingQueue).

Helpers here build Meta webhook bodies, deliver queue tasks the way Cloud Tasks does, and walk
a case through the SOP with the services themselves (so a case "in state X" is one the real
code produced), with a port fake for WhatsApp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app

from sapa.adapters.meta_webhook import InboundMessage, sign_body
from sapa.adapters.pdf import simple_pdf
from sapa.bootstrap import Container
from sapa.domain.case import Actor, Case
from sapa.domain.errors import TransientError
from sapa.ports import MediaContent, Task
from sapa.services import guestbook, intake, notify, signing, workflow
from sapa.services.guestbook import Submission, Upload
from sapa.services.workflow import ActionInput
from tests.conftest import ROOT, RecordingQueue

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


# ---- the WhatsApp port fake -------------------------------------------------------------------


@dataclass
class Sent:
    kind: str  # text | document | template | buttons
    phone_number_id: str
    to: str
    body: str  # the text, the document's caption, or the template's name
    data: bytes = b""
    filename: str = ""
    language: str = ""  # templates only
    params: list[str] = field(default_factory=list)  # templates; buttons: their titles


@dataclass
class FakeWhatsApp:
    """An in-memory implementation of the WhatsApp port: records sends, serves media, and
    raises TransientError on every call while `down` is set."""

    sent: list[Sent] = field(default_factory=list)
    media: dict[str, MediaContent] = field(default_factory=dict)
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise TransientError("WhatsApp API unavailable (fake)")

    def send_text(
        self, phone_number_id: str, to: str, body: str, *, reference: str | None = None
    ) -> str:
        self._check()
        self.sent.append(Sent("text", phone_number_id, to, body))
        return f"wamid.out.{len(self.sent)}"

    def send_document(
        self,
        phone_number_id: str,
        to: str,
        data: bytes,
        filename: str,
        caption: str,
        *,
        reference: str | None = None,
    ) -> str:
        self._check()
        self.sent.append(Sent("document", phone_number_id, to, caption, data, filename))
        return f"wamid.out.{len(self.sent)}"

    def send_template(
        self,
        phone_number_id: str,
        to: str,
        name: str,
        language: str,
        params: list[str],
        *,
        reference: str | None = None,
    ) -> str:
        self._check()
        self.sent.append(
            Sent("template", phone_number_id, to, name, language=language, params=list(params))
        )
        return f"wamid.out.{len(self.sent)}"

    def send_buttons(
        self,
        phone_number_id: str,
        to: str,
        body: str,
        buttons: list[tuple[str, str]],
        *,
        reference: str | None = None,
    ) -> str:
        self._check()
        self.sent.append(Sent("buttons", phone_number_id, to, body, params=[t for _, t in buttons]))
        return f"wamid.out.{len(self.sent)}"

    def fetch_media(self, media_id: str) -> MediaContent:
        self._check()
        return self.media[media_id]

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.media[media_id] = MediaContent(data, mime_type, sha)
        return sha


@pytest.fixture
def wa(container: Container) -> FakeWhatsApp:
    fake = FakeWhatsApp()
    container.whatsapp = fake  # type: ignore[misc]
    return fake


@pytest.fixture
def queue(container: Container) -> RecordingQueue:
    q = container.queue
    assert isinstance(q, RecordingQueue)
    return q


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
    """Walks cases along the SOP through the services (the same code the functions call)."""

    c: Container
    wa: FakeWhatsApp
    queue: RecordingQueue
    _n: int = 0

    def _wamid(self) -> str:
        self._n += 1
        return f"wamid.flow.{self._n}"

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
        for task in self.queue.take():
            if task.kind == "notify" and task.payload.get("kind") == "guestbook_link":
                notify.notify(self.c, task.payload, task.name or "")
        case = self.c.store.get(case.id)
        assert case.state == "link_sent"
        return case

    def token(self, case: Case) -> str:
        return notify.link_serializer(self.c).dumps(case.id)

    def submit(self, case: Case) -> Case:
        # the address must name a desa of the case's own kecamatan
        desa = {} if case.kecamatan == SOMBA_OPU else {"desa": self.c.desa[case.kecamatan][0].name}
        sub = Submission(valid_fields(**desa), valid_files())
        case = guestbook.submit(self.c, self.token(case), sub)
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
        (email,) = [
            s.email for s in self.c.staff.all() if "loket" in s.roles and s.kecamatan == kecamatan
        ]
        return email

    def to(self, state: str, **who: Any) -> Case:
        """A new case (greeted by `who`) taken along the happy path until `state`."""
        case = self.greet(**who)
        loket = self.loket_of(case.kecamatan)
        path: list[tuple[str, Callable[[Case], Case]]] = [
            ("link_sent", self.send_link),
            ("form_submitted", self.submit),
            ("checked", lambda k: self.act(k, loket, "check")),
            ("contacted", lambda k: self.act(k, loket, "contact")),
            ("forwarded", lambda k: self.act(k, "verifikasi@sapa.test", "forward")),
            (
                "entered_in_siak",
                lambda k: self.act(
                    k,
                    "operator.siak@sapa.test",
                    "enter_siak",
                    siak_ref="SIAK-0001",
                    draft_pdf=tiny_pdf("Konsep KTP-el"),
                ),
            ),
            ("approved", lambda k: self.act(k, "kabid@sapa.test", "approve")),
        ]
        for reached, step in path:
            if case.state == state:
                break
            case = step(case)
            assert case.state == reached, (case.state, reached)
        assert case.state == state
        self.queue.take()
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
