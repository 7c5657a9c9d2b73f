"""Contract tests: GraphWhatsApp against the WhatsApp simulator, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import BaseWSGIServer, make_server

from sapa.adapters.graph_whatsapp import GraphWhatsApp
from sapa.dev.simulator import EXTENSION, create_simulator_app
from sapa.domain.errors import PermanentError, TransientError
from sapa.domain.reference import default_region

TOKEN = "sim-token-for-tests"
APP_SECRET = "sim-app-secret-for-tests"
PNID = "demo-730608"  # Somba Opu
RESIDENT = "6281234567890"
PHONE_NUMBERS = {f"demo-{k.code}": k.code for k in default_region().kecamatan}
NAMES = {k.code: k.name for k in default_region().kecamatan}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n% SAPA test\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _serve(app: Any) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@dataclass
class Hook:
    """One webhook request the receiver saw."""

    valid: bool
    raw: bytes
    signature: str
    body: Any


@dataclass
class Receiver:
    """Collects webhook POSTs, checking the signature as SAPA's webhook must."""

    url: str = ""
    base: str = ""
    hooks: list[Hook] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, pred: Callable[[list[Hook]], bool], timeout: float = 10.0) -> list[Hook]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.hooks):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"webhooks not seen in time: {self.hooks!r}")
                self.cond.wait(left)
            return list(self.hooks)

    def messages(self) -> list[Hook]:
        return [h for h in self.hooks if "messages" in _value(h.body)]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for h in self.hooks for s in _value(h.body).get("statuses", [])]


def _value(body: Any) -> dict[str, Any]:
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


@dataclass
class Sim:
    url: str
    app: Flask
    db_path: Path

    @property
    def graph(self) -> str:
        return f"{self.url}/sim/graph/v21.0"

    def send(self, **fields: Any) -> requests.Response:
        body = {"phone_number_id": PNID, "from": RESIDENT, "name": "Andi"} | fields
        return requests.post(f"{self.url}/dev/wa/api/send", json=body, timeout=15)

    def send_file(self, data: bytes, filename: str, caption: str = "") -> requests.Response:
        return requests.post(
            f"{self.url}/dev/wa/api/send",
            data={"phone_number_id": PNID, "from": RESIDENT, "name": "Andi", "caption": caption},
            files={"file": (filename, data, "application/octet-stream")},
            timeout=15,
        )

    def conversation(self, wa_id: str = RESIDENT, render: bool = False) -> dict[str, Any]:
        r = requests.post(
            f"{self.url}/dev/wa/api/conversation",
            json={"phone_number_id": PNID, "wa_id": wa_id, "render": render},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def faults(self, status: int, count: int = 1) -> None:
        r = requests.post(
            f"{self.url}/sim/control/faults", json={"status": status, "count": count}, timeout=5
        )
        assert r.status_code == 200, r.text


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    app = Flask("receiver")

    @app.post("/webhook")
    def hook() -> tuple[str, int]:
        raw = request.get_data()
        given = request.headers.get("X-Hub-Signature-256", "")
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(given.encode(), expected.encode())
        with rec.cond:
            rec.hooks.append(Hook(valid, raw, given, json.loads(raw)))
            rec.cond.notify_all()
        return ("ok", 200) if valid else ("bad signature", 401)

    @app.post("/moved")
    def moved() -> Any:
        return redirect("/webhook", code=307)

    server, base = _serve(app)
    rec.base, rec.url = base, f"{base}/webhook"
    yield rec
    server.shutdown()


def _start_sim(db_path: Path, webhook_url: str, **kw: Any) -> tuple[BaseWSGIServer, Sim]:
    holder: dict[str, Flask] = {}

    def late(environ: Any, start_response: Any) -> Any:  # the app needs the port first
        return holder["app"](environ, start_response)

    server, url = _serve(late)
    app = create_simulator_app(
        db_path=db_path,
        token=TOKEN,
        app_secret=APP_SECRET,
        webhook_url=webhook_url,
        phone_numbers=PHONE_NUMBERS,
        kecamatan_names=NAMES,
        public_base=url,
        **({"status_delay": 0.01} | kw),
    )
    holder["app"] = app
    return server, Sim(url, app, db_path)


@pytest.fixture
def sim(tmp_path: Path, receiver: Receiver) -> Iterator[Sim]:
    server, handle = _start_sim(tmp_path / "wa-sim.db", receiver.url)
    yield handle
    server.shutdown()
    handle.app.extensions[EXTENSION].close()


@pytest.fixture
def wa(sim: Sim) -> Iterator[GraphWhatsApp]:
    client = GraphWhatsApp(sim.graph, TOKEN, timeout=5)
    yield client
    client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- GraphWhatsApp against the simulator ----------------------------------------------------


def test_send_text_round_trip(sim: Sim, wa: GraphWhatsApp) -> None:
    wamid = wa.send_text(PNID, RESIDENT, "Selamat datang di layanan Disdukcapil Gowa.")

    assert wamid.startswith("wamid.")
    [message] = sim.conversation()["messages"]
    assert message["direction"] == "out"
    assert message["type"] == "text"
    assert message["text"] == "Selamat datang di layanan Disdukcapil Gowa."
    assert message["wamid"] == wamid
    assert message["document"] is None
    assert message["at"].endswith("+00:00")


def test_send_document_uploads_then_sends_and_is_downloadable(sim: Sim, wa: GraphWhatsApp) -> None:
    wamid = wa.send_document(PNID, RESIDENT, PDF, "KK-baru.pdf", "Dokumen KK Anda")

    [message] = sim.conversation()["messages"]
    assert message["wamid"] == wamid
    assert message["type"] == "document"
    assert message["text"] == "Dokumen KK Anda"
    document = message["document"]
    assert document["filename"] == "KK-baru.pdf"
    page_copy = requests.get(document["url"], timeout=5)
    assert page_copy.status_code == 200
    assert page_copy.content == PDF
    assert page_copy.headers["Content-Disposition"].startswith("attachment")
    assert page_copy.headers["X-Content-Type-Options"] == "nosniff"

    meta = requests.get(
        f"{sim.graph}/{document['media_id']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()
    assert meta["mime_type"] == "application/pdf"
    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert meta["file_size"] == len(PDF)
    assert requests.get(meta["url"], timeout=5).status_code == 401
    graph_copy = requests.get(meta["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert graph_copy.content == PDF


def test_fetch_media_of_a_residents_image(sim: Sim, wa: GraphWhatsApp, receiver: Receiver) -> None:
    answer = sim.send_file(PNG, "foto-kk.png", caption="KK").json()
    assert answer["error"] is None
    [hook] = receiver.wait_for(lambda hooks: len(hooks) >= 1)
    media_id = _value(hook.body)["messages"][0]["image"]["id"]

    media = wa.fetch_media(media_id)

    assert media.data == PNG
    assert media.mime_type == "image/png"
    assert media.sha256 == hashlib.sha256(PNG).hexdigest()


def test_wrong_token_is_permanent_with_metas_message(sim: Sim) -> None:
    client = GraphWhatsApp(sim.graph, "not-the-token", timeout=5)

    with pytest.raises(PermanentError) as caught:
        client.send_text(PNID, RESIDENT, "Halo")

    assert "Invalid OAuth access token" in caught.value.message
    assert caught.value.detail["http_status"] == 401
    assert caught.value.detail["meta_code"] == 190
    assert sim.conversation()["messages"] == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_injected_faults_are_transient_then_success(
    sim: Sim, wa: GraphWhatsApp, status: int
) -> None:
    sim.faults(status, count=2)

    for _ in range(2):
        with pytest.raises(TransientError) as caught:
            wa.send_text(PNID, RESIDENT, "Halo")
        assert caught.value.detail["http_status"] == status

    assert wa.send_text(PNID, RESIDENT, "Halo").startswith("wamid.")
    assert len(sim.conversation()["messages"]) == 1


def test_faults_can_be_cleared(sim: Sim, wa: GraphWhatsApp) -> None:
    sim.faults(500, count=5)
    with pytest.raises(TransientError):
        wa.send_document(PNID, RESIDENT, PDF, "a.pdf", "")
    sim.faults(0)

    assert wa.send_document(PNID, RESIDENT, PDF, "a.pdf", "").startswith("wamid.")


def test_injected_4xx_fault_is_permanent(sim: Sim, wa: GraphWhatsApp) -> None:
    sim.faults(403)

    with pytest.raises(PermanentError):
        wa.send_text(PNID, RESIDENT, "Halo")


def test_connection_refused_is_transient() -> None:
    client = GraphWhatsApp(f"http://127.0.0.1:{_free_port()}/v21.0", TOKEN, timeout=2)

    with pytest.raises(TransientError):
        client.send_text(PNID, RESIDENT, "Halo")
    with pytest.raises(TransientError):
        client.fetch_media("1234567890123456")


def test_rejected_requests_are_permanent(sim: Sim, wa: GraphWhatsApp) -> None:
    with pytest.raises(PermanentError, match="parameter to is required"):
        wa.send_text(PNID, "", "Halo")
    with pytest.raises(PermanentError, match="does not exist"):
        wa.send_text("demo-000000", RESIDENT, "Halo")
    with pytest.raises(PermanentError, match="does not exist"):
        wa.fetch_media("1000000000000000")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}},
            "to is required",
        ),
        ({"messaging_product": "whatsapp", "to": RESIDENT, "type": "sticker"}, "Param type"),
        (
            {"messaging_product": "whatsapp", "to": RESIDENT, "type": "document", "document": {}},
            "'id' or an http(s) 'link'",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": RESIDENT,
                "type": "document",
                "document": {"id": "999", "filename": "x.pdf"},
            },
            "media id 999 does not exist",
        ),
        ({"to": RESIDENT, "type": "text", "text": {"body": "x"}}, "messaging_product"),
    ],
)
def test_graph_validation_answers_meta_style_400(sim: Sim, body: Any, needle: str) -> None:
    r = requests.post(
        f"{sim.graph}/{PNID}/messages",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert r.status_code == 400
    error = r.json()["error"]
    assert needle in error["message"]
    assert isinstance(error["code"], int)
    assert error["type"]
    assert error["fbtrace_id"]


def test_template_and_link_documents_are_accepted(sim: Sim) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    template = {
        "messaging_product": "whatsapp",
        "to": RESIDENT,
        "type": "template",
        "template": {
            "name": "pengingat",
            "language": {"code": "id"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "GWA-1"}]}],
        },
    }
    link = {
        "messaging_product": "whatsapp",
        "to": RESIDENT,
        "type": "document",
        "document": {"link": "https://example.org/panduan.pdf", "caption": "Panduan"},
    }
    answer = requests.post(f"{sim.graph}/{PNID}/messages", json=template, headers=auth, timeout=5)
    assert answer.json()["messages"][0]["message_status"] == "accepted"
    assert answer.json()["contacts"] == [{"input": RESIDENT, "wa_id": RESIDENT}]
    requests.post(f"{sim.graph}/{PNID}/messages", json=link, headers=auth, timeout=5)

    first, second = sim.conversation()["messages"]
    assert first["type"] == "template"
    assert "GWA-1" in first["text"]
    assert second["document"] == {
        "filename": "panduan.pdf",
        "media_id": None,
        "url": "https://example.org/panduan.pdf",
    }


# --- the adapter against a misbehaving server ------------------------------------------------


@pytest.fixture
def fake_graph() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"sha256": hashlib.sha256(PNG).hexdigest(), "delay": 0.0}
    app = Flask("fake-graph")

    @app.get("/v21.0/<media_id>")
    def media_meta(media_id: str) -> Response:
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "url": f"{request.host_url}blob",
                "mime_type": "image/png",
                "sha256": state["sha256"],
                "file_size": len(PNG),
                "id": media_id,
            }
        )

    @app.get("/blob")
    def blob() -> tuple[bytes | str, int]:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return "", 401
        return PNG, 200

    @app.post("/v21.0/<pnid>/messages")
    def messages(pnid: str) -> tuple[str, int]:
        time.sleep(state["delay"])
        return "<html>Bad Gateway</html>", 502

    server, url = _serve(app)
    yield url, state
    server.shutdown()


def test_fetch_media_sha256_mismatch_is_transient(fake_graph: tuple[str, dict[str, Any]]) -> None:
    url, state = fake_graph
    state["sha256"] = hashlib.sha256(b"something else").hexdigest()

    with pytest.raises(TransientError, match="sha256"):
        GraphWhatsApp(f"{url}/v21.0", TOKEN).fetch_media("42")


def test_fetch_media_accepts_base64_sha256(fake_graph: tuple[str, dict[str, Any]]) -> None:
    url, state = fake_graph
    state["sha256"] = base64.b64encode(hashlib.sha256(PNG).digest()).decode()

    assert GraphWhatsApp(f"{url}/v21.0", TOKEN).fetch_media("42").data == PNG


def test_non_json_5xx_and_timeouts_are_transient(fake_graph: tuple[str, dict[str, Any]]) -> None:
    url, state = fake_graph
    with pytest.raises(TransientError) as caught:
        GraphWhatsApp(f"{url}/v21.0", TOKEN).send_text(PNID, RESIDENT, "Halo")
    assert caught.value.detail["http_status"] == 502

    state["delay"] = 1.0
    with pytest.raises(TransientError, match="tepat waktu"):
        GraphWhatsApp(f"{url}/v21.0", TOKEN, timeout=0.2).send_text(PNID, RESIDENT, "Halo")


def test_token_is_not_in_repr() -> None:
    client = GraphWhatsApp("http://127.0.0.1:1/v21.0", TOKEN)
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client.__dict__)


# --- the resident's side: inbound webhooks ---------------------------------------------------


def test_resident_text_becomes_a_signed_meta_webhook(sim: Sim, receiver: Receiver) -> None:
    before = int(time.time())
    answer = sim.send(text="Assalamualaikum")

    assert answer.status_code == 200
    result = answer.json()
    assert result["webhook_status"] == 200
    assert result["error"] is None
    assert result["wamid"].startswith("wamid.SIM")
    [hook] = receiver.wait_for(lambda hooks: len(hooks) >= 1)
    assert hook.valid
    expected = "sha256=" + hmac.new(APP_SECRET.encode(), hook.raw, hashlib.sha256).hexdigest()
    assert hook.signature == expected
    body = hook.body
    assert body["object"] == "whatsapp_business_account"
    [entry] = body["entry"]
    assert isinstance(entry["id"], str)
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": "62411000008", "phone_number_id": PNID}
    assert value["contacts"] == [{"profile": {"name": "Andi"}, "wa_id": RESIDENT}]
    [message] = value["messages"]
    assert message == {
        "from": RESIDENT,
        "id": result["wamid"],
        "timestamp": message["timestamp"],
        "type": "text",
        "text": {"body": "Assalamualaikum"},
    }
    assert before <= int(message["timestamp"]) <= int(time.time())

    [stored] = sim.conversation()["messages"]
    assert stored["direction"] == "in"
    assert stored["wamid"] == result["wamid"]
    assert stored["webhook_status"] == 200


def test_resident_image_webhook_media_resolves_through_graph(sim: Sim, receiver: Receiver) -> None:
    result = sim.send_file(PNG, "kk.png", caption="KK").json()

    [hook] = receiver.wait_for(lambda hooks: len(hooks) >= 1)
    assert hook.valid
    [message] = _value(hook.body)["messages"]
    assert message["type"] == "image"
    assert message["id"] == result["wamid"]
    image = message["image"]
    assert set(image) == {"caption", "mime_type", "sha256", "id"}
    assert image["caption"] == "KK"
    assert image["mime_type"] == "image/png"
    assert image["sha256"] == hashlib.sha256(PNG).hexdigest()

    meta = requests.get(
        f"{sim.graph}/{image['id']}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert meta.status_code == 200
    assert meta.json()["id"] == image["id"]
    assert meta.json()["sha256"] == image["sha256"]


def test_resident_pdf_becomes_a_document_webhook(sim: Sim, receiver: Receiver) -> None:
    sim.send_file(PDF, "../../akta lahir.pdf")

    [hook] = receiver.wait_for(lambda hooks: len(hooks) >= 1)
    document = _value(hook.body)["messages"][0]["document"]
    assert document["filename"] == "akta lahir.pdf"
    assert document["mime_type"] == "application/pdf"
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert "caption" not in document
    assert GraphWhatsApp(sim.graph, TOKEN).fetch_media(document["id"]).data == PDF


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"phone_number_id": "demo-999999", "text": "x"}, "Nomor layanan"),
        ({"from": "08-abc", "text": "x"}, "Nomor WhatsApp"),
        ({"text": "   "}, "Pesan kosong"),
    ],
)
def test_send_api_rejects_bad_input(sim: Sim, fields: dict[str, Any], needle: str) -> None:
    r = sim.send(**fields)

    assert r.status_code == 400
    assert r.json()["wamid"] is None
    assert needle in r.json()["error"]
    assert sim.conversation()["messages"] == []


def test_send_api_rejects_other_file_types(sim: Sim) -> None:
    r = sim.send_file(b"GIF89a....", "x.gif")

    assert r.status_code == 400
    assert "JPG, PNG, atau PDF" in r.json()["error"]


def test_webhook_failures_are_reported_and_the_message_kept(
    tmp_path: Path, receiver: Receiver
) -> None:
    for url, status in [
        (f"http://127.0.0.1:{_free_port()}/webhook", None),
        (f"{receiver.base}/moved", 307),
    ]:
        server, handle = _start_sim(tmp_path / f"sim-{status}.db", url, send_statuses=False)
        try:
            result = handle.send(text="Halo").json()
            assert result["wamid"]
            assert result["webhook_status"] == status
            assert result["error"]
            [stored] = handle.conversation()["messages"]
            assert stored["error"] == result["error"]
        finally:
            server.shutdown()
            handle.app.extensions[EXTENSION].close()
    assert receiver.hooks == []  # the redirect was not followed


def test_statuses_arrive_sent_then_delivered(
    sim: Sim, wa: GraphWhatsApp, receiver: Receiver
) -> None:
    wamid = wa.send_text(PNID, RESIDENT, "Berkas Anda sedang diperiksa.")

    receiver.wait_for(lambda hooks: len(hooks) >= 2)
    assert all(h.valid for h in receiver.hooks)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["sent", "delivered"]
    for status in statuses:
        assert status["id"] == wamid
        assert status["recipient_id"] == RESIDENT
        assert status["timestamp"].isdigit()
    assert _value(receiver.hooks[0].body)["metadata"]["phone_number_id"] == PNID
    assert sim.conversation()["messages"][0]["status"] == "delivered"


def test_no_status_webhooks_when_disabled(tmp_path: Path, receiver: Receiver) -> None:
    server, handle = _start_sim(tmp_path / "quiet.db", receiver.url, send_statuses=False)
    try:
        GraphWhatsApp(handle.graph, TOKEN).send_text(PNID, RESIDENT, "Halo")
        deadline = time.monotonic() + 5
        while handle.conversation()["messages"][0]["status"] != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert receiver.hooks == []
    finally:
        server.shutdown()
        handle.app.extensions[EXTENSION].close()


def test_mark_as_read(sim: Sim, receiver: Receiver) -> None:
    wamid = sim.send(text="Halo").json()["wamid"]
    r = requests.post(
        f"{sim.graph}/{PNID}/messages",
        json={"messaging_product": "whatsapp", "status": "read", "message_id": wamid},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )

    assert r.json() == {"success": True}
    assert sim.conversation()["messages"][0]["status"] == "read"


# --- the chat page -------------------------------------------------------------------------


def test_chat_page(sim: Sim) -> None:
    r = requests.get(f"{sim.url}/dev/wa", timeout=5)

    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert len(r.content) < 60 * 1024
    page = r.text
    assert '<html lang="id">' in page
    for name in NAMES.values():
        assert name in page
    assert f'<option value="{PNID}">Somba Opu ({PNID})</option>' in page
    assert 'name="viewport"' in page
    assert "6281234567890" in page
    assert "setInterval(muat, 2000)" in page
    assert "//cdn" not in page
    assert "<script src" not in page
    assert "script-src 'nonce-" in r.headers["Content-Security-Policy"]
    # personal data only travels in POST bodies
    assert requests.get(f"{sim.url}/dev/wa/api/conversation", timeout=5).status_code == 405
    assert 'method: "POST"' in page


def test_conversation_render_escapes_everything(sim: Sim, wa: GraphWhatsApp) -> None:
    hostile = '<script>alert("x")</script> cek https://example.org/a?b=1&c=<2> ya'
    sim.send(text=hostile, name='<img src=x onerror="alert(1)">')
    wa.send_text(PNID, RESIDENT, "<b>tebal</b> & lihat http://127.0.0.1:8080/tamu/abc.")
    sim.send_file(PDF, '"><i>x<i>.pdf')

    answer = sim.conversation(render=True)
    rendered = answer["html"]

    assert "<script" not in rendered
    assert "<b>" not in rendered
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in rendered
    assert (
        '<a href="https://example.org/a?b=1&amp;c=" target="_blank" rel="noopener noreferrer">'
        in rendered
    )
    assert "&lt;2&gt;" in rendered
    assert '<a href="http://127.0.0.1:8080/tamu/abc" target="_blank"' in rendered
    assert "&lt;b&gt;tebal&lt;/b&gt; &amp; lihat" in rendered
    assert 'download="&quot;&gt;&lt;i&gt;x&lt;i&gt;.pdf"' in rendered
    assert "<i>" not in rendered
    assert "onerror" not in rendered
    # the raw JSON keeps the text as sent; the page inserts only the server-rendered HTML
    assert answer["messages"][0]["text"] == hostile


def test_empty_conversation_renders_a_hint(sim: Sim) -> None:
    assert "Belum ada pesan" in sim.conversation(render=True)["html"]


# --- persistence ---------------------------------------------------------------------------


def test_messages_and_media_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    db_path = tmp_path / "wa-sim.db"
    server, first = _start_sim(db_path, receiver.url)
    first.send(text="Halo")
    GraphWhatsApp(first.graph, TOKEN).send_document(PNID, RESIDENT, PDF, "kk.pdf", "")
    first.app.extensions[EXTENSION].close()  # lets the queued statuses finish
    wamids = [m["wamid"] for m in first.conversation()["messages"]]
    server.shutdown()

    server, second = _start_sim(db_path, receiver.url)
    try:
        messages = second.conversation()["messages"]
        assert [m["wamid"] for m in messages] == wamids
        assert [(m["direction"], m["type"]) for m in messages] == [
            ("in", "text"),
            ("out", "document"),
        ]
        assert messages[1]["status"] == "delivered"
        url = messages[1]["document"]["url"]
        assert requests.get(url, timeout=5).content == PDF
    finally:
        server.shutdown()
        second.app.extensions[EXTENSION].close()
