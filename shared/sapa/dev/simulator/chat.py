"""The chat page where a person plays the resident (`GET /dev/wa`, templates/chat.html), and
the conversation it shows: `POST /dev/wa/api/conversation` answers the messages as JSON and,
asked to render, as HTML items with every value escaped (the page inserts them as they are)."""

from __future__ import annotations

import html
import re
import secrets
import sqlite3
from datetime import UTC, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from flask import Flask, Response, request

from sapa.dev.simulator.resident import send
from sapa.dev.simulator.shapes import buttons_of, json_answer, media_response
from sapa.dev.simulator.webhooks import WaSimulator
from sapa.domain.values import BSUID

_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""
_STATUS_LABEL = {
    "accepted": "🕓 diterima",
    "sent": "✓ terkirim",
    "delivered": "✓✓ sampai",
    "read": "✓✓ dibaca",
    "failed": "⚠ gagal",
}


def _display_tz() -> tzinfo:
    try:
        return ZoneInfo("Asia/Makassar")
    except ZoneInfoNotFoundError:  # pragma: no cover - tzdata is a dependency
        return UTC


_TZ = _display_tz()


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def add_chat(app: Flask, sim: WaSimulator) -> None:
    """`GET /dev/wa`, `POST /dev/wa/api/send`, `POST /dev/wa/api/conversation` and
    `GET /dev/wa/media/<id>` (media shown on the page)."""

    def base_url() -> str:
        return sim.public_base or request.url_root.rstrip("/")

    @app.get("/dev/wa")
    def chat_page() -> Response:
        nonce = secrets.token_urlsafe(16)
        page = _page(sim, request.script_root, nonce)
        response = Response(page, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.post("/dev/wa/api/send")
    def api_send() -> Response:
        return send(sim)

    @app.post("/dev/wa/api/conversation")
    def api_conversation() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return json_answer({"error": "Permintaan harus berupa JSON."}, 400)
        phone_number_id = body.get("phone_number_id")
        wa_id = str(body.get("wa_id") or "").strip()
        if not BSUID.match(wa_id):
            wa_id = re.sub(r"\D", "", wa_id)
        if phone_number_id not in sim.phone_numbers:
            return json_answer({"error": "Nomor layanan tidak dikenal."}, 400)
        rows = sim.store.conversation(str(phone_number_id), wa_id)
        answer: dict[str, Any] = {"messages": [_message_json(r, base_url()) for r in rows]}
        if body.get("render"):
            answer["html"] = _render(rows, request.script_root)
        response = json_answer(answer)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/dev/wa/media/<media_id>")
    def page_media(media_id: str) -> Response:
        return media_response(sim.store, media_id, attachment=False)


def _page(sim: WaSimulator, root: str, nonce: str) -> str:
    """The chat page: the service numbers by kecamatan name, `root` (the prefix the simulator
    is mounted under) for the page's requests, `nonce` on its one style and one script."""
    numbers = sorted(
        sim.phone_numbers.items(),
        key=lambda item: (sim.kecamatan_names.get(item[1], item[1]), item[0]),
    )
    return (
        _templates()
        .get_template("chat.html")
        .render(
            nonce=nonce,
            numbers=[(pnid, sim.kecamatan_names.get(code, code)) for pnid, code in numbers],
            root=root,
        )
    )


def _message_json(row: sqlite3.Row, base: str) -> dict[str, Any]:
    document = image = None
    if row["type"] == "document":
        url = f"{base}/dev/wa/media/{row['media_id']}" if row["media_id"] else row["link"]
        document = {"filename": row["filename"] or "", "media_id": row["media_id"], "url": url}
    elif row["type"] == "image":
        url = f"{base}/dev/wa/media/{row['media_id']}" if row["media_id"] else row["link"]
        image = {"media_id": row["media_id"], "url": url}
    return {
        "direction": row["direction"],
        "type": row["type"],
        "text": row["text"],
        "wamid": row["wamid"],
        "at": datetime.fromtimestamp(row["at"], UTC).isoformat(timespec="milliseconds"),
        "document": document,
        "image": image,
        "buttons": [{"id": i, "title": t} for i, t in buttons_of(row)],
        "status": row["status"],
        "webhook_status": row["webhook_status"],
        "error": row["error"],
    }


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _linkify(text: str) -> str:
    """`text` HTML-escaped, with http(s) URLs turned into links."""
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if not url.partition("://")[2]:
            continue
        start = match.start()
        out.append(_esc(text[pos:start]))
        out.append(
            f'<a href="{_esc(url)}" target="_blank" rel="noopener noreferrer">{_esc(url)}</a>'
        )
        pos = start + len(url)
    out.append(_esc(text[pos:]))
    return "".join(out)


def _render(rows: list[sqlite3.Row], root: str) -> str:
    """The conversation as `<li>` items, every value escaped (the page inserts it as is)."""
    if not rows:
        return (
            '<li class="kosong">Belum ada pesan. Tulis pesan pertama Anda di bawah, '
            "misalnya “Halo”.</li>"
        )
    items: list[str] = []
    for row in rows:
        parts: list[str] = []
        if row["type"] == "template":
            parts.append('<span class="tag">Templat</span>')
        if row["type"] == "image":
            if row["media_id"]:
                src = f"{root}/dev/wa/media/{row['media_id']}"
                parts.append(f'<img src="{_esc(src)}" alt="Gambar" loading="lazy">')
            elif row["link"]:
                parts.append(_linkify(row["link"]))
        if row["type"] == "document":
            name = row["filename"] or "dokumen"
            if row["media_id"]:
                href = f"{root}/dev/wa/media/{row['media_id']}"
                parts.append(
                    f'<a class="doc" href="{_esc(href)}" download="{_esc(name)}">'
                    f"📄 {_esc(name)}</a>"
                )
            elif row["link"] and urlsplit(row["link"]).scheme in ("http", "https"):
                parts.append(
                    f'<a class="doc" href="{_esc(row["link"])}" target="_blank" '
                    f'rel="noopener noreferrer">📄 {_esc(name)}</a>'
                )
        if row["text"]:
            parts.append(f'<div class="teks">{_linkify(row["text"])}</div>')
        for bid, title in buttons_of(row):
            parts.append(
                f'<button type="button" class="pilih" data-wamid="{_esc(row["wamid"])}" '
                f'data-id="{_esc(bid)}" data-title="{_esc(title)}">{_esc(title)}</button>'
            )
        when = datetime.fromtimestamp(row["at"], _TZ).strftime("%d/%m %H:%M")
        if row["direction"] == "out":
            label = _STATUS_LABEL.get(row["status"] or "", row["status"] or "")
        elif row["error"]:
            label = "⚠ webhook gagal"
        else:
            label = "✓ diteruskan ke SAPA" if row["webhook_status"] else ""
            if row["status"] == "read":
                label = "✓✓ dibaca SAPA"
        meta = f'<span class="meta">{_esc(when)} {_esc(label)}</span>'
        if row["direction"] == "in" and row["error"]:
            meta += f'<span class="galat">{_esc(row["error"])}</span>'
        cls = "warga" if row["direction"] == "in" else "layanan"
        items.append(f'<li class="{cls}"><div class="gelembung">{"".join(parts)}{meta}</div></li>')
    return "".join(items)
