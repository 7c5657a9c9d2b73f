"""Development WhatsApp simulator: a Graph-API-compatible fake plus a chat page for residents."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import logging
import queue
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from sapa.domain.values import BSUID

log = logging.getLogger(__name__)

EXTENSION = "sapa_wa_simulator"
"""Key of the `WaSimulator` in `app.extensions`."""

WABA_ID = "SIMWABA"
WEBHOOK_TIMEOUT = 10.0
MAX_REQUEST_BYTES = 101 * 1024 * 1024
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024  # Meta's limit for documents
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Meta's limit for images
MAX_TEXT = 4096
MAX_CAPTION = 1024
CONVERSATION_LIMIT = 500
REDELIVERY_POLL = 0.5  # seconds between looks for webhooks to deliver again
REDELIVERY_MAX_BACKOFF = 30.0
REDELIVERY_HORIZON = 24 * 3600.0  # Meta retries for days; a day is plenty for development
GRAPH_TYPES = ("text", "image", "document", "template", "interactive")

_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+")
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""
_MAGIC = (
    (b"\xff\xd8\xff", "image", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image", "image/png"),
    (b"%PDF-", "document", "application/pdf"),
)
_STATUS_LABEL = {
    "accepted": "🕓 diterima",
    "sent": "✓ terkirim",
    "delivered": "✓✓ sampai",
    "read": "✓✓ dibaca",
    "failed": "⚠ gagal",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    wamid TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    phone_number_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    media_id TEXT,
    filename TEXT,
    link TEXT,
    status TEXT,
    webhook_status INTEGER,
    error TEXT,
    at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_chat ON messages (phone_number_id, wa_id, seq);
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    phone_number_id TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    filename TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL
);
"""


def _display_tz() -> tzinfo:
    try:
        return ZoneInfo("Asia/Makassar")
    except ZoneInfoNotFoundError:  # pragma: no cover - tzdata is a dependency
        return UTC


_TZ = _display_tz()


@dataclass(frozen=True)
class _Media:
    id: str
    phone_number_id: str
    mime_type: str
    sha256: str
    size: int
    filename: str


class _Store:
    """Messages and media in one SQLite file (WAL); a connection per call, so any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            columns = {r["name"] for r in db.execute("PRAGMA table_info(messages)")}
            if "status_acked" not in columns:
                # The last status the webhook acknowledged (redelivery posts the ones after
                # it); messages stored before this column existed count as reported.
                db.execute("ALTER TABLE messages ADD COLUMN status_acked TEXT")
                db.execute("UPDATE messages SET status_acked = status WHERE direction = 'out'")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add_message(self, **fields: Any) -> None:
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO messages ({columns}) VALUES ({marks})",  # noqa: S608 - our names
                tuple(fields.values()),
            )

    def update_message(self, wamid: str, **fields: Any) -> bool:
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self._connect() as db:
            cur = db.execute(
                f"UPDATE messages SET {sets} WHERE wamid = ?",  # noqa: S608 - our names
                (*fields.values(), wamid),
            )
            return cur.rowcount > 0

    def message(self, wamid: str) -> sqlite3.Row | None:
        with self._connect() as db:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM messages WHERE wamid = ?", (wamid,)
            ).fetchone()
            return row

    def conversation(self, phone_number_id: str, wa_id: str) -> list[sqlite3.Row]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM messages WHERE phone_number_id = ? AND wa_id = ? "
                "ORDER BY seq DESC LIMIT ?",
                (phone_number_id, wa_id, CONVERSATION_LIMIT),
            ).fetchall()
        return list(reversed(rows))

    def add_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str) -> _Media:
        digest = hashlib.sha256(data).hexdigest()
        with self._connect() as db:
            while True:
                # numeric like Meta's, but 17 digits: a 16-digit id can pass as a NIK and set
                # off the checks that no NIK reaches a log
                media_id = str(10**16 + secrets.randbelow(9 * 10**16))
                try:
                    db.execute(
                        "INSERT INTO media (id, phone_number_id, mime_type, sha256, size, "
                        "filename, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            media_id,
                            phone_number_id,
                            mime_type,
                            digest,
                            len(data),
                            filename,
                            time.time(),
                            sqlite3.Binary(data),
                        ),
                    )
                except sqlite3.IntegrityError:  # pragma: no cover - 1 in 10^15
                    continue
                break
        return _Media(media_id, phone_number_id, mime_type, digest, len(data), filename)

    def media(self, media_id: str) -> _Media | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, phone_number_id, mime_type, sha256, size, filename FROM media "
                "WHERE id = ? AND deleted = 0",
                (media_id,),
            ).fetchone()
        return _Media(*row) if row else None

    def media_bytes(self, media_id: str) -> bytes | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT data FROM media WHERE id = ? AND deleted = 0", (media_id,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def undelivered(self, since: float) -> list[sqlite3.Row]:
        """Messages whose webhook is owed: inbound ones the webhook did not acknowledge with
        a 2xx, outbound ones whose sent/delivered statuses were not all reported."""
        with self._connect() as db:
            return list(
                db.execute(
                    "SELECT * FROM messages WHERE at >= ? AND ("
                    "(direction = 'in' AND (webhook_status IS NULL"
                    " OR webhook_status NOT BETWEEN 200 AND 299))"
                    " OR (direction = 'out' AND status NOT IN ('read', 'failed')"
                    " AND COALESCE(status_acked, '') != 'delivered')) ORDER BY seq",
                    (since,),
                ).fetchall()
            )

    def delete_media(self, media_id: str) -> bool:
        with self._connect() as db:
            cur = db.execute(
                "UPDATE media SET deleted = 1, data = x'' WHERE id = ? AND deleted = 0",
                (media_id,),
            )
            return cur.rowcount > 0


class _Faults:
    """Test-only fault injection: the next `count` Graph API calls, or every call for the next
    `seconds`, answer `status`, after hanging `delay` seconds first (a provider that times out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = 0
        self._count = 0
        self._until = 0.0  # time.monotonic() deadline of a fault by duration
        self._delay = 0.0
        self._code: int | None = None
        self._message: str | None = None

    def set(
        self,
        status: int,
        count: int,
        code: int | None,
        message: str | None,
        *,
        seconds: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        with self._lock:
            self._status, self._count = status, (count if status else 0)
            self._until = time.monotonic() + seconds if status and seconds > 0 else 0.0
            self._delay = delay if status else 0.0
            self._code, self._message = code, message

    def _active(self) -> bool:
        return bool(self._status) and (self._count > 0 or time.monotonic() < self._until)

    def state(self) -> dict[str, Any]:
        with self._lock:
            state: dict[str, Any] = {
                "status": self._status if self._active() else 0,
                "remaining": self._count,
            }
            if self._until:
                state["seconds_left"] = round(max(0.0, self._until - time.monotonic()), 3)
            return state

    def take(self) -> tuple[int, int | None, str | None, float] | None:
        with self._lock:
            if not self._active():
                return None
            if time.monotonic() >= self._until:
                self._count -= 1
            return self._status, self._code, self._message, self._delay


class WaSimulator:
    """State and behaviour behind the simulator app (found at `app.extensions[EXTENSION]`)."""

    def __init__(
        self,
        *,
        db_path: Path,
        token: str,
        app_secret: str,
        webhook_url: str,
        phone_numbers: dict[str, str],
        kecamatan_names: dict[str, str],
        public_base: str,
        send_statuses: bool,
        status_delay: float,
        redeliver: bool = False,
    ) -> None:
        """Open (or create) the state at `db_path`; see `create_simulator_app`."""
        if not token or not app_secret:
            raise ValueError("the simulator needs a token and an app secret")
        self.store = _Store(db_path)
        self.faults = _Faults()
        self.token = token
        self.webhook_url = webhook_url
        self.phone_numbers = dict(phone_numbers)
        self.kecamatan_names = dict(kecamatan_names)
        self.public_base = public_base.rstrip("/")
        self.send_statuses = send_statuses
        self.status_delay = status_delay
        self._secret = app_secret.encode("utf-8")
        self._statuses: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        # Redelivery (like Meta, which retries an unacknowledged webhook for days): wamids this
        # process is delivering right now, and when to try each failed one again.
        self.redeliver = redeliver
        self._inflight: set[str] = set()
        self._retry: dict[str, tuple[float, int]] = {}
        self._redelivery: threading.Thread | None = None
        self._stop = threading.Event()
        if redeliver:
            self._redelivery = threading.Thread(
                target=self._run_redelivery, name="wa-sim-redelivery", daemon=True
            )
            self._redelivery.start()

    def __repr__(self) -> str:
        return f"WaSimulator(db={str(self.store.path)!r}, webhook={self.webhook_url!r})"

    # --- webhooks -------------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        """The `X-Hub-Signature-256` header value Meta would send for `body`."""
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def post_webhook(self, payload: dict[str, Any]) -> tuple[int | None, str | None]:
        """Sign and POST `payload` to the webhook (10 s timeout, no redirects followed).

        Returns (HTTP status or None, error text or None).
        """
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": self.sign(body),
            "User-Agent": "facebookexternalua (sapa-simulator)",
        }
        try:
            with requests.Session() as http:
                http.trust_env = False  # a local webhook must never go through a proxy
                response = http.post(
                    self.webhook_url,
                    data=body,
                    headers=headers,
                    timeout=WEBHOOK_TIMEOUT,
                    allow_redirects=False,
                )
                status = response.status_code
                response.close()
        except requests.RequestException as exc:
            return None, f"Webhook tidak dapat dihubungi ({type(exc).__name__}): {exc}"[:400]
        if 200 <= status < 300:
            return status, None
        return status, f"Webhook menjawab HTTP {status}."

    def envelope(self, phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
        """Wrap a `value` the way Meta's `messages` webhook does."""
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_number(phone_number_id),
                                    "phone_number_id": phone_number_id,
                                },
                                **value,
                            },
                        }
                    ],
                }
            ],
        }

    def display_number(self, phone_number_id: str) -> str:
        """A made-up display number of the service number, e.g. 62411000008 for 730608."""
        code = self.phone_numbers.get(phone_number_id, "")
        tail = code[-2:] if code[-2:].isdigit() else "00"
        return "62411" + tail.zfill(6)

    # --- statuses -------------------------------------------------------------------------

    def queue_statuses(self, wamid: str, phone_number_id: str, wa_id: str) -> None:
        """Mark an accepted outbound message sent, then delivered, in the background (and
        tell the webhook if `send_statuses`); never blocks the caller."""
        self.begin(wamid)
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run_statuses, name="wa-sim-statuses", daemon=True
                )
                self._worker.start()
        self._statuses.put((wamid, phone_number_id, wa_id))

    def close(self) -> None:
        """Stop the redelivery thread, and the status thread after the statuses queued."""
        self._stop.set()
        if self._redelivery is not None:
            self._redelivery.join(timeout=WEBHOOK_TIMEOUT * 2)
        with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._statuses.put(None)
            worker.join(timeout=WEBHOOK_TIMEOUT * 3)

    def begin(self, wamid: str) -> None:
        """`wamid`'s webhook is being delivered by this process: redelivery leaves it alone."""
        with self._worker_lock:
            self._inflight.add(wamid)

    def end(self, wamid: str) -> None:
        with self._worker_lock:
            self._inflight.discard(wamid)

    def _run_redelivery(self) -> None:
        while not self._stop.wait(REDELIVERY_POLL):
            try:
                self.redeliver_pending()
            except Exception:  # best effort: the simulator must keep running
                log.exception("wa simulator: redelivery failed")

    def redeliver_pending(self) -> int:
        """Deliver again every webhook still owed (after a restart, a refused or failed post),
        each with exponential backoff. Returns how many were acknowledged now."""
        now = time.time()
        done = 0
        for row in self.store.undelivered(now - REDELIVERY_HORIZON):
            wamid = row["wamid"]
            with self._worker_lock:
                if wamid in self._inflight:
                    continue
            due, tries = self._retry.get(wamid, (0.0, 0))
            if due > now or self._stop.is_set():
                continue
            if row["direction"] == "in":
                code, error = self.post_webhook(json.loads(row["payload"]))
                self.store.update_message(wamid, webhook_status=code, error=error)
                ok = error is None
            else:
                ok = all(
                    self._advance(wamid, row["phone_number_id"], row["wa_id"], status)
                    for status in ("sent", "delivered")[row["status_acked"] == "sent" :]
                )
            if ok:
                self._retry.pop(wamid, None)
                done += 1
            else:
                self._retry[wamid] = (now + min(REDELIVERY_MAX_BACKOFF, 2.0**tries), tries + 1)
        return done

    def _run_statuses(self) -> None:
        while True:
            item = self._statuses.get()
            if item is None:
                return
            wamid, phone_number_id, wa_id = item
            try:
                for status in ("sent", "delivered"):
                    time.sleep(self.status_delay)
                    try:
                        if not self._advance(wamid, phone_number_id, wa_id, status):
                            break  # the redelivery thread tries again later
                    except Exception:  # best effort: the simulator must keep running
                        log.exception("wa simulator: status %s of %s failed", status, wamid)
            finally:
                self.end(wamid)

    def _advance(self, wamid: str, phone_number_id: str, wa_id: str, status: str) -> bool:
        """Record `status` of an outbound message, report it to the webhook and remember that
        the webhook acknowledged it. False when redelivery is on and the webhook did not
        acknowledge it (the status is owed still)."""
        row = self.store.message(wamid)
        order = ("accepted", "sent", "delivered")
        if row is None or row["status"] in ("read", "failed"):
            return True
        acked = row["status_acked"] if row["status_acked"] in order else "accepted"
        if order.index(acked) >= order.index(status):
            return True  # reported already
        if order.index(row["status"]) < order.index(status):
            self.store.update_message(wamid, status=status)
        if not self.send_statuses:
            self.store.update_message(wamid, status_acked=status)
            return True
        echo = {}
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            reference = json.loads(row["payload"]).get("biz_opaque_callback_data")
            if isinstance(reference, str) and reference:
                echo["biz_opaque_callback_data"] = reference  # as Meta echoes it
        value = {
            "statuses": [
                {
                    "id": wamid,
                    "status": status,
                    "timestamp": str(int(time.time())),
                    **(
                        {"recipient_user_id": wa_id}
                        if BSUID.match(wa_id)
                        else {"recipient_id": wa_id}
                    ),
                    **echo,
                }
            ]
        }
        code, error = self.post_webhook(self.envelope(phone_number_id, value))
        log.info("wa simulator: status %s of %s → webhook %s", status, wamid, code or error)
        if error is not None and self.redeliver:
            return False
        self.store.update_message(wamid, status_acked=status)
        return True


def create_simulator_app(
    *,
    db_path: Path,
    token: str,
    app_secret: str,
    webhook_url: str,
    phone_numbers: dict[str, str],
    kecamatan_names: dict[str, str],
    public_base: str,
    send_statuses: bool = True,
    status_delay: float = 0.2,
    redeliver: bool = False,
) -> Flask:
    """The development WhatsApp simulator as a Flask app owning `/sim/...` and `/dev/wa...`.

    - `/sim/graph/<version>/...`: the Graph API subset SAPA uses (send messages, upload and
      resolve media), Bearer `token` required; `GET /sim/media/<id>` serves media bytes.
    - `POST /sim/control/faults`: `{"status": 500, "count": 3}` fails the next N Graph calls;
      `"seconds": 5` fails every call for five seconds instead; `"delay": 12` hangs each
      failing call that long before answering (past the client's timeout: a provider that
      times out). `{"status": 0}` clears it.
    - `GET /dev/wa`: the chat page where a person plays the resident; its JSON API is
      `POST /dev/wa/api/send` and `POST /dev/wa/api/conversation`.

    Inbound messages and statuses are POSTed to `webhook_url`, signed with `app_secret` like
    Meta does. `phone_numbers` maps phone_number_id → kecamatan code, `kecamatan_names` maps
    code → name. `public_base` is the server's external root URL (media URLs are built on
    it); an empty string means "the URL the request came in on". State lives in SQLite at
    `db_path` and survives restarts. With `redeliver`, webhooks that were not acknowledged
    with a 2xx (the server was down, restarting or failing) are posted again with backoff, also
    after a restart, as Meta does; `WaSimulator.close` stops that thread. Mount the app without
    stripping its path prefixes.
    """
    sim = WaSimulator(
        db_path=db_path,
        token=token,
        app_secret=app_secret,
        webhook_url=webhook_url,
        phone_numbers=phone_numbers,
        kecamatan_names=kecamatan_names,
        public_base=public_base,
        send_statuses=send_statuses,
        status_delay=status_delay,
        redeliver=redeliver,
    )
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions[EXTENSION] = sim

    def base_url() -> str:
        return sim.public_base or request.url_root.rstrip("/")

    # --- Graph API ------------------------------------------------------------------------

    @app.before_request
    def _graph_guard() -> Response | None:
        if not request.path.startswith(("/sim/graph/", "/sim/media/")):
            return None
        fault = sim.faults.take()
        if fault is not None:
            status, code, message, delay = fault
            if delay > 0:
                time.sleep(delay)
            if status == 429:
                default = (80007, "(#80007) Rate limit hit")
            elif status >= 500:
                default = (1, "An unknown error occurred (simulated fault)")
            else:
                default = (100, "(#100) Simulated fault")
            return _meta_error(status, message or default[1], code=code or default[0])
        given = request.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode("utf-8"), sim.token.encode("utf-8")
        ):
            return _meta_error(
                401,
                "Invalid OAuth access token - Cannot parse access token",
                code=190,
            )
        return None

    @app.post("/sim/graph/<version>/<phone_number_id>/messages")
    def graph_messages(version: str, phone_number_id: str) -> Response:
        if phone_number_id not in sim.phone_numbers:
            return _unknown_object(phone_number_id, "post")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _meta_error(400, "(#100) The request body must be a JSON object.")
        if body.get("messaging_product") != "whatsapp":
            return _meta_error(400, "(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            return _mark_read(body)
        to, user_id = body.get("to"), body.get("recipient")
        if isinstance(user_id, str) and user_id and not to:
            # a resident known by username: their business-scoped user id, as Meta takes it
            if not BSUID.match(user_id):
                return _meta_error(
                    400,
                    "(#131030) Recipient not valid",
                    code=131030,
                    details="'recipient' must be a business-scoped user id.",
                )
            to = wa_id = user_id
        elif not isinstance(to, str) or not to.strip():
            return _meta_error(400, "(#100) The parameter to is required.")
        else:
            wa_id = re.sub(r"\D", "", to)
            if not 7 <= len(wa_id) <= 15:
                return _meta_error(
                    400,
                    "(#131030) Recipient phone number not valid",
                    code=131030,
                    details="'to' must be a phone number in international format.",
                )
        kind = body.get("type", "text")
        if kind not in GRAPH_TYPES:
            shown = str(kind)[:40]
            return _meta_error(
                400,
                f"(#100) Param type must be one of {{{', '.join(GRAPH_TYPES).upper()}}} "
                f'- got "{shown}".',
            )
        parsed = _parse_outbound(sim, kind, body.get(kind))
        if isinstance(parsed, Response):
            return parsed
        wamid = _new_wamid()
        sim.store.add_message(
            wamid=wamid,
            direction="out",
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            type=kind,
            status="accepted",
            at=time.time(),
            payload=json.dumps(body),
            **parsed,
        )
        sim.queue_statuses(wamid, phone_number_id, wa_id)
        message: dict[str, str] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "contacts": [
                    {"input": to, "user_id": wa_id}
                    if BSUID.match(wa_id)
                    else {"input": to, "wa_id": wa_id}
                ],
                "messages": [message],
            }
        )

    def _mark_read(body: dict[str, Any]) -> Response:
        wamid = body.get("message_id")
        row = sim.store.message(wamid) if isinstance(wamid, str) else None
        if row is None or row["direction"] != "in":
            return _meta_error(400, "(#100) Invalid parameter", details="Unknown message_id.")
        sim.store.update_message(row["wamid"], status="read")
        return jsonify({"success": True})

    @app.post("/sim/graph/<version>/<phone_number_id>/media")
    def graph_upload(version: str, phone_number_id: str) -> Response:
        if phone_number_id not in sim.phone_numbers:
            return _unknown_object(phone_number_id, "post")
        if request.form.get("messaging_product") != "whatsapp":
            return _meta_error(400, "(#100) The parameter messaging_product is required.")
        upload = request.files.get("file")
        if upload is None:
            return _meta_error(400, "(#100) The parameter file is required.")
        mime_type = (request.form.get("type") or upload.mimetype or "").strip().lower()
        if not _MIME.fullmatch(mime_type):
            return _meta_error(400, "(#100) Param type must be a MIME type.")
        data = upload.read()
        if not data:
            return _meta_error(400, "(#100) Param file must not be empty.")
        media = sim.store.add_media(
            phone_number_id, data, mime_type, _clean_filename(upload.filename or "")
        )
        return jsonify({"id": media.id})

    @app.get("/sim/graph/<version>/<media_id>")
    def graph_media(version: str, media_id: str) -> Response:
        media = sim.store.media(media_id)
        if media is None:
            return _unknown_object(media_id, "get")
        return jsonify(
            {
                "messaging_product": "whatsapp",
                "url": f"{base_url()}/sim/media/{media.id}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.size,
                "id": media.id,
            }
        )

    @app.delete("/sim/graph/<version>/<media_id>")
    def graph_media_delete(version: str, media_id: str) -> Response:
        if not sim.store.delete_media(media_id):
            return _unknown_object(media_id, "delete")
        return jsonify({"success": True})

    @app.route("/sim/graph/<path:rest>", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
    def graph_unknown(rest: str) -> Response:
        return _meta_error(400, "Unknown path components: /" + rest[:100], code=2500)

    @app.get("/sim/media/<media_id>")
    def media_download(media_id: str) -> Response:
        return _media_response(sim, media_id, attachment=True)

    # --- test control ---------------------------------------------------------------------

    @app.post("/sim/control/webhook")
    def control_webhook() -> Response:
        """Sign and post any webhook body, as Meta would: every shape of notification
        (reactions, edits, system notices, template updates, ...) can be played by hand."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json({"error": "Isi permintaan harus berupa objek JSON."}, 400)
        code, error = sim.post_webhook(body)
        return _json({"webhook_status": code, "error": error})

    @app.route("/sim/control/faults", methods=["GET", "POST"])
    def control_faults() -> Response:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return _json({"error": "JSON object expected"}, 400)
            status, count = body.get("status", 0), body.get("count", 1)
            code, message = body.get("code"), body.get("message")
            seconds, delay = body.get("seconds", 0), body.get("delay", 0)
            for name, value in (("seconds", seconds), ("delay", delay)):
                if not isinstance(value, int | float) or not 0 <= value <= 3600:
                    return _json({"error": f"{name} must be a number of seconds (0..3600)"}, 400)
            if not isinstance(status, int) or not (status == 0 or 400 <= status <= 599):
                return _json({"error": "status must be 0 or 400..599"}, 400)
            if not isinstance(count, int) or count < 0:
                return _json({"error": "count must be a non-negative integer"}, 400)
            if code is not None and not isinstance(code, int):
                return _json({"error": "code must be an integer"}, 400)
            if message is not None and not isinstance(message, str):
                return _json({"error": "message must be a string"}, 400)
            sim.faults.set(status, count, code, message, seconds=float(seconds), delay=float(delay))
        return _json(sim.faults.state())

    # --- the resident's side --------------------------------------------------------------

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
        return _inbound(sim)

    @app.post("/dev/wa/api/conversation")
    def api_conversation() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _json({"error": "Permintaan harus berupa JSON."}, 400)
        phone_number_id = body.get("phone_number_id")
        wa_id = str(body.get("wa_id") or "").strip()
        if not BSUID.match(wa_id):
            wa_id = re.sub(r"\D", "", wa_id)
        if phone_number_id not in sim.phone_numbers:
            return _json({"error": "Nomor layanan tidak dikenal."}, 400)
        rows = sim.store.conversation(str(phone_number_id), wa_id)
        answer: dict[str, Any] = {"messages": [_message_json(r, base_url()) for r in rows]}
        if body.get("render"):
            answer["html"] = _render(rows, request.script_root)
        response = _json(answer)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/dev/wa/media/<media_id>")
    def page_media(media_id: str) -> Response:
        return _media_response(sim, media_id, attachment=False)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> BaseResponse:
        status = exc.code or 500
        if request.path.startswith(("/sim/graph/", "/sim/media/")):
            return _meta_error(status, f"({status}) {exc.name}", code=100)
        if request.path.startswith(("/dev/wa/api/", "/sim/")):
            text = (
                "Berkas terlalu besar."
                if status == 413
                else f"Permintaan tidak dapat diproses ({status})."
            )
            return _json({"wamid": None, "webhook_status": None, "error": text}, status)
        return exc.get_response()

    return app


# --- Graph API helpers --------------------------------------------------------------------


def _json(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def _meta_error(
    status: int,
    message: str,
    *,
    code: int = 100,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "fbtrace_id": "Sim" + secrets.token_urlsafe(12),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return _json({"error": error}, status)


def _unknown_object(object_id: str, method: str) -> Response:
    return _meta_error(
        400,
        f"Unsupported {method} request. Object with ID '{object_id[:80]}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        code=100,
        error_type="GraphMethodException",
        subcode=33,
    )


def _parse_outbound(sim: WaSimulator, kind: str, obj: Any) -> dict[str, Any] | Response:
    """The stored columns of an outbound message of type `kind`, or a Meta-like 400."""
    if not isinstance(obj, dict):
        return _meta_error(400, f"(#100) The parameter {kind} is required.")
    if kind == "text":
        body = obj.get("body")
        if not isinstance(body, str) or not body.strip():
            return _meta_error(400, "(#100) The parameter text['body'] is required.")
        if len(body) > MAX_TEXT:
            return _meta_error(400, f"(#100) Param text['body'] must be at most {MAX_TEXT} chars.")
        return {"text": body}
    if kind == "interactive":
        buttons = _reply_buttons(obj)
        if isinstance(buttons, Response):
            return buttons
        return {"text": obj["body"]["text"]}
    if kind == "template":
        name = obj.get("name")
        language = obj.get("language")
        if not isinstance(name, str) or not name:
            return _meta_error(400, "(#100) The parameter template['name'] is required.")
        if not isinstance(language, dict) or not isinstance(language.get("code"), str):
            return _meta_error(400, "(#100) The parameter template['language'] is required.")
        return {"text": _template_text(name, obj.get("components"))}
    caption = obj.get("caption", "")
    if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
        return _meta_error(400, f"(#100) Param {kind}['caption'] must be a short string.")
    media_id, link = obj.get("id"), obj.get("link")
    filename = obj.get("filename", "")
    if not isinstance(filename, str):
        return _meta_error(400, f"(#100) Param {kind}['filename'] must be a string.")
    if media_id is not None:
        media = sim.store.media(str(media_id))
        if media is None:
            return _meta_error(
                400,
                f"(#100) Invalid parameter: media id {str(media_id)[:40]} does not exist.",
                details="Unknown media id.",
            )
        return {
            "text": caption,
            "media_id": media.id,
            "filename": _clean_filename(filename or media.filename) if kind == "document" else None,
        }
    if isinstance(link, str) and urlsplit(link).scheme in ("http", "https") and len(link) < 2048:
        return {
            "text": caption,
            "link": link,
            "filename": _clean_filename(filename or link.rsplit("/", 1)[-1])
            if kind == "document"
            else None,
        }
    return _meta_error(400, f"(#100) Param {kind} must have an 'id' or an http(s) 'link'.")


def _reply_buttons(obj: dict[str, Any]) -> list[tuple[str, str]] | Response:
    """The (id, title) reply buttons of an interactive `button` message, checked as the Cloud
    API checks them (1-3 buttons, unique ids and titles, titles of 1-20 characters, a body of
    at most 1024), or a Meta-like 400. The simulator shows only reply buttons."""
    if obj.get("type") != "button":
        return _meta_error(400, "(#100) The simulator shows interactive messages of type button.")
    body = obj.get("body")
    body_text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(body_text, str) or not body_text.strip() or len(body_text) > 1024:
        return _meta_error(400, "(#100) Param interactive['body']['text'] is required (max 1024).")
    action = obj.get("action")
    raw = action.get("buttons") if isinstance(action, dict) else None
    if not isinstance(raw, list) or not 1 <= len(raw) <= 3:
        return _meta_error(400, "(#131009) Parameter value is not valid: 1-3 buttons.", code=131009)
    out: list[tuple[str, str]] = []
    for b in raw:
        reply = b.get("reply") if isinstance(b, dict) and b.get("type") == "reply" else None
        bid = reply.get("id") if isinstance(reply, dict) else None
        title = reply.get("title") if isinstance(reply, dict) else None
        if not (isinstance(bid, str) and 0 < len(bid) <= 256):
            return _meta_error(400, "(#131009) Button id is required (max 256).", code=131009)
        if not (isinstance(title, str) and 0 < len(title.strip()) <= 20):
            return _meta_error(400, "(#131009) Button title must be 1-20 characters.", code=131009)
        out.append((bid, title))
    if len({i for i, _ in out}) < len(out) or len({t for _, t in out}) < len(out):
        return _meta_error(400, "(#131009) Button ids and titles must be unique.", code=131009)
    return out


def _buttons_of(row: sqlite3.Row) -> list[tuple[str, str]]:
    """The reply buttons of a stored outbound interactive message (none for anything else)."""
    if row["direction"] != "out" or row["type"] != "interactive":
        return []
    try:
        found = _reply_buttons(json.loads(row["payload"]).get("interactive") or {})
    except (TypeError, ValueError, AttributeError):
        return []
    return [] if isinstance(found, Response) else found


def _template_text(name: str, components: Any) -> str:
    params: list[str] = []
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict) and isinstance(component.get("parameters"), list):
                for p in component["parameters"]:
                    if isinstance(p, dict) and isinstance(p.get("text"), str):
                        params.append(p["text"])
    return f"[Templat {name}]" + (" " + " | ".join(params) if params else "")


def _media_response(sim: WaSimulator, media_id: str, *, attachment: bool) -> Response:
    """Media bytes, never rendered as active content on our origin (nosniff, sandbox CSP)."""
    media = sim.store.media(media_id)
    data = sim.store.media_bytes(media_id) if media else None
    if media is None or data is None:
        if request.path.startswith("/sim/"):
            return _unknown_object(media_id, "get")
        return _json({"error": "Media tidak ditemukan."}, 404)
    inline = not attachment and media.mime_type in ("image/jpeg", "image/png")
    mime_type = media.mime_type if attachment or inline else "application/octet-stream"
    response = Response(data, mimetype=mime_type)
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", media.filename)[:100] or media.id
    response.headers.set(
        "Content-Disposition", "inline" if inline else "attachment", filename=ascii_name
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _new_wamid() -> str:
    return "wamid.SIM" + secrets.token_hex(16).upper()


def _clean_filename(name: str) -> str:
    """A display file name: no directories, no control characters, at most 120 characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    return base[:120]


# --- the resident's side ------------------------------------------------------------------


def _inbound(sim: WaSimulator) -> Response:
    """`POST /dev/wa/api/send`: store the resident's message, then deliver it as a webhook."""

    def refuse(text: str, status: int = 400) -> Response:
        return _json({"wamid": None, "webhook_status": None, "error": text}, status)

    upload = None
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return refuse("Permintaan tidak dapat dibaca (JSON tidak valid).")
        fields: dict[str, Any] = body
    else:
        fields = request.form.to_dict()
        upload = request.files.get("file")
    phone_number_id = fields.get("phone_number_id")
    if not isinstance(phone_number_id, str) or phone_number_id not in sim.phone_numbers:
        return refuse("Nomor layanan kecamatan tidak dikenal.")
    wa_id = re.sub(r"[\s+()-]", "", str(fields.get("from") or ""))
    # a number, or a business-scoped user id: a resident with a username whose number
    # WhatsApp does not show (e.g. ID.13491208655302741918)
    username = bool(BSUID.match(wa_id))
    if not username and not (wa_id.isdigit() and 8 <= len(wa_id) <= 15):
        return refuse(
            "Nomor WhatsApp tidak valid. Contoh: 6281234567890 (atau ID pengguna seperti "
            "ID.13491208655302741918)."
        )
    name = " ".join(str(fields.get("name") or "").split())[:60]
    now = time.time()
    wamid = _new_wamid()
    sender = {"from_user_id": wa_id} if username else {"from": wa_id}
    message: dict[str, Any] = {**sender, "id": wamid, "timestamp": str(int(now))}
    columns: dict[str, Any] = {}
    if upload is not None and upload.filename:
        data = upload.read()
        if not data:
            return refuse("Berkas kosong.")
        sniffed = next((m for m in _MAGIC if data.startswith(m[0])), None)
        if sniffed is None:
            return refuse("Berkas harus berupa JPG, PNG, atau PDF.")
        _, kind, mime_type = sniffed
        limit = MAX_IMAGE_BYTES if kind == "image" else MAX_DOCUMENT_BYTES
        if len(data) > limit:
            return refuse(f"Ukuran berkas melebihi batas {limit // (1024 * 1024)} MB.", 413)
        caption = str(fields.get("caption") or fields.get("text") or "")[:MAX_CAPTION]
        filename = ""
        if kind == "document":
            filename = _clean_filename(upload.filename) or "dokumen.pdf"
            if not filename.lower().endswith(".pdf"):
                filename += ".pdf"
        media = sim.store.add_media(phone_number_id, data, mime_type, filename)
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
        if kind == "document":
            content["filename"] = filename
        content.update({"mime_type": mime_type, "sha256": media.sha256, "id": media.id})
        message.update({"type": kind, kind: content})
        columns = {"type": kind, "text": caption, "media_id": media.id, "filename": filename}
    elif isinstance(fields.get("reply"), dict):
        # the resident tapped a reply button of one of our messages
        tap = fields["reply"]
        row = sim.store.message(str(tap.get("wamid") or ""))
        chosen = [
            (i, t) for i, t in (_buttons_of(row) if row is not None else []) if i == tap.get("id")
        ]
        if row is None or row["wa_id"] != wa_id or row["phone_number_id"] != phone_number_id:
            return refuse("Pesan bertombol itu tidak ada dalam percakapan ini.")
        if not chosen:
            return refuse("Tombol itu tidak ada pada pesan tersebut.")
        bid, title = chosen[0]
        message.update(
            {
                "context": {"from": sim.display_number(phone_number_id), "id": row["wamid"]},
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": bid, "title": title},
                },
            }
        )
        columns = {"type": "interactive", "text": title}
    else:
        text = fields.get("text")
        if not isinstance(text, str) or not text.strip():
            return refuse("Pesan kosong. Tulis pesan atau lampirkan berkas.")
        if len(text) > MAX_TEXT:
            return refuse(f"Pesan terlalu panjang (maksimal {MAX_TEXT} karakter).")
        message.update({"type": "text", "text": {"body": text}})
        columns = {"type": "text", "text": text}
    payload = sim.envelope(
        phone_number_id,
        {
            "contacts": [
                {
                    "profile": {"name": name, "username": "@" + (name.lower().replace(" ", ""))},
                    "user_id": wa_id,
                }
                if username
                else {"profile": {"name": name}, "wa_id": wa_id}
            ],
            "messages": [message],
        },
    )
    sim.begin(wamid)  # redelivery waits for this first attempt's answer
    try:
        sim.store.add_message(
            wamid=wamid,
            direction="in",
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            name=name,
            at=now,
            payload=json.dumps(payload),
            **columns,
        )
        webhook_status, error = sim.post_webhook(payload)
        sim.store.update_message(wamid, webhook_status=webhook_status, error=error)
    finally:
        sim.end(wamid)
    return _json({"wamid": wamid, "webhook_status": webhook_status, "error": error})


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
        "buttons": [{"id": i, "title": t} for i, t in _buttons_of(row)],
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
        for bid, title in _buttons_of(row):
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


def _page(sim: WaSimulator, root: str, nonce: str) -> str:
    numbers = sorted(
        sim.phone_numbers.items(),
        key=lambda item: (sim.kecamatan_names.get(item[1], item[1]), item[0]),
    )
    options = "".join(
        f'<option value="{_esc(pnid)}">{_esc(sim.kecamatan_names.get(code, code))} '
        f"({_esc(pnid)})</option>"
        for pnid, code in numbers
    )
    return (
        _PAGE.replace("__NONCE__", _esc(nonce))
        .replace("__OPTIONS__", options)
        .replace("__ROOT__", json.dumps(root).replace("<", "\\u003c"))
    )


_PAGE = """<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Simulator WhatsApp SAPA</title>
<style nonce="__NONCE__">
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#e9e3da;
color:#111;display:flex;flex-direction:column;height:100vh;height:100dvh;max-width:760px;
margin:0 auto}
header{background:#075e54;color:#fff;padding:.5rem .75rem}
header h1{font-size:1.05rem;margin:0}
header p{margin:.1rem 0 0;font-size:.8rem;opacity:.85}
details{background:#f7f7f7;border-bottom:1px solid #ccc;padding:.4rem .75rem}
summary{cursor:pointer;font-weight:600}
.isian{display:grid;gap:.4rem;margin-top:.4rem}
label{display:flex;flex-direction:column;font-size:.85rem;gap:.15rem}
input,select,textarea,button{font:inherit}
input,select,textarea{padding:.45rem;border:1px solid #bbb;border-radius:6px;background:#fff;
width:100%}
#chat{flex:1;overflow-y:auto;list-style:none;margin:0;padding:.75rem;display:flex;
flex-direction:column;gap:.35rem}
#chat li{display:flex}
#chat li.warga{justify-content:flex-end}
.gelembung{max-width:85%;padding:.4rem .6rem;border-radius:8px;background:#fff;
box-shadow:0 1px 1px rgba(0,0,0,.15);overflow-wrap:anywhere}
.warga .gelembung{background:#d9fdd3}
.teks{white-space:pre-wrap}
.gelembung img{max-width:100%;max-height:260px;display:block;border-radius:6px}
.doc{display:block;padding:.4rem;background:rgba(0,0,0,.05);border-radius:6px;
margin-bottom:.2rem}
.meta{display:block;text-align:right;font-size:.72rem;color:#667}
.galat{display:block;font-size:.75rem;color:#a00}
.tag{font-size:.7rem;background:#075e54;color:#fff;border-radius:4px;padding:0 .3rem}
.kosong{color:#555;justify-content:center;text-align:center;padding:2rem 1rem}
.pilih{display:block;width:100%;margin-top:.3rem;background:#fff;color:#128c7e;
border:1px solid #cde;font-weight:600}
form{display:flex;flex-wrap:wrap;gap:.4rem;padding:.5rem;background:#f0f0f0;
border-top:1px solid #ccc}
#teks{flex:1 1 12rem;resize:none;height:2.6rem;max-height:8rem}
button{border:0;border-radius:6px;padding:.5rem .9rem;background:#128c7e;color:#fff;
cursor:pointer}
button:disabled{opacity:.5}
.lampir{display:inline-flex;align-items:center;justify-content:center;padding:.5rem .7rem;
border-radius:6px;background:#ddd;cursor:pointer}
.lampir input{position:absolute;width:1px;height:1px;opacity:0}
#berkas-info{flex-basis:100%;font-size:.8rem;color:#333}
#berkas-info:empty,#info:empty{display:none}
#batal{background:#888;padding:.1rem .5rem;margin-left:.4rem}
#info{padding:.35rem .75rem;background:#fff3cd;color:#5c4400;font-size:.85rem}
</style>
</head>
<body>
<header>
<h1>Simulator WhatsApp SAPA</h1>
<p>Khusus pengembangan: Anda berperan sebagai warga yang menghubungi layanan kecamatan.</p>
</header>
<details id="pengaturan" open>
<summary>Pengaturan percakapan</summary>
<div class="isian">
<label>Nomor layanan kecamatan
<select id="nomor">__OPTIONS__</select></label>
<label>Nomor WhatsApp Anda (atau ID pengguna bila nomor disembunyikan, mis. ID.7306123456)
<input id="wa" autocomplete="off" value="6281234567890"></label>
<label>Nama profil WhatsApp
<input id="nama" autocomplete="off" maxlength="60" value="Andi"></label>
</div>
</details>
<div id="info" role="status" aria-live="polite"></div>
<ul id="chat" aria-live="polite" aria-label="Percakapan"></ul>
<form id="kirim" method="post" autocomplete="off">
<span id="berkas-info"></span>
<label class="lampir" title="Lampirkan gambar (JPG/PNG) atau PDF">📎
<input id="berkas" type="file" accept="image/jpeg,image/png,application/pdf"></label>
<textarea id="teks" rows="1" maxlength="4096" placeholder="Tulis pesan"
aria-label="Pesan"></textarea>
<button id="tombol" type="submit">Kirim</button>
</form>
<script nonce="__NONCE__">
(function () {
  "use strict";
  var ROOT = __ROOT__;
  var KEY = "sapa-sim-wa";
  function el(id) { return document.getElementById(id); }
  var nomor = el("nomor"), wa = el("wa"), nama = el("nama"), chat = el("chat");
  var form = el("kirim"), teks = el("teks"), berkas = el("berkas"), tombol = el("tombol");
  var info = el("info"), berkasInfo = el("berkas-info");
  var terakhir = null, sibuk = false;

  try {
    var simpan = JSON.parse(localStorage.getItem(KEY) || "{}");
    if (simpan.nomor && nomor.querySelector("option[value='" + CSS.escape(simpan.nomor) + "']")) {
      nomor.value = simpan.nomor;
    }
    if (simpan.wa) { wa.value = simpan.wa; }
    if (simpan.nama) { nama.value = simpan.nama; }
    if (simpan.nomor) { el("pengaturan").open = false; }
  } catch (e) { /* penyimpanan lokal tidak tersedia */ }

  function ingat() {
    try {
      var isi = {nomor: nomor.value, wa: wa.value, nama: nama.value};
      localStorage.setItem(KEY, JSON.stringify(isi));
    } catch (e) { /* abaikan */ }
  }
  function kabar(teksKabar) { info.textContent = teksKabar || ""; }

  function kirimPost(path, isi) {
    var opsi = {method: "POST", credentials: "same-origin", cache: "no-store"};
    if (isi instanceof FormData) {
      opsi.body = isi;
    } else {
      opsi.headers = {"Content-Type": "application/json"};
      opsi.body = JSON.stringify(isi);
    }
    return fetch(ROOT + path, opsi).then(function (r) {
      return r.json().catch(function () {
        return {error: "Jawaban server tidak terbaca (HTTP " + r.status + ")."};
      });
    });
  }

  function muat() {
    if (sibuk || document.hidden) { return; }
    sibuk = true;
    var isi = {phone_number_id: nomor.value, wa_id: wa.value, render: true};
    kirimPost("/dev/wa/api/conversation", isi)
      .then(function (j) {
        if (typeof j.html !== "string") {
          kabar(j.error || "Percakapan tidak dapat dimuat.");
          return;
        }
        if (j.html === terakhir) { return; }
        var turun = terakhir === null ||
          chat.scrollTop + chat.clientHeight >= chat.scrollHeight - 60;
        terakhir = j.html;
        chat.innerHTML = j.html; /* dirender dan di-escape oleh server */
        if (turun) { chat.scrollTop = chat.scrollHeight; }
      })
      .catch(function () { kabar("Server tidak dapat dihubungi."); })
      .then(function () { sibuk = false; });
  }

  function ganti() { ingat(); terakhir = null; chat.textContent = ""; kabar(""); muat(); }
  nomor.addEventListener("change", ganti);
  wa.addEventListener("change", ganti);
  nama.addEventListener("change", ingat);

  function tampilBerkas() {
    berkasInfo.textContent = "";
    var f = berkas.files && berkas.files[0];
    if (!f) { teks.placeholder = "Tulis pesan"; return; }
    berkasInfo.textContent = "Lampiran: " + f.name + " ";
    var batal = document.createElement("button");
    batal.type = "button"; batal.id = "batal"; batal.textContent = "Batal";
    batal.addEventListener("click", function () { berkas.value = ""; tampilBerkas(); });
    berkasInfo.appendChild(batal);
    teks.placeholder = "Keterangan (opsional)";
  }
  berkas.addEventListener("change", tampilBerkas);

  teks.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    ingat();
    var f = berkas.files && berkas.files[0];
    var isi;
    if (f) {
      isi = new FormData();
      isi.append("phone_number_id", nomor.value);
      isi.append("from", wa.value);
      isi.append("name", nama.value);
      isi.append("caption", teks.value);
      isi.append("file", f);
    } else {
      if (!teks.value.trim()) { return; }
      isi = {phone_number_id: nomor.value, from: wa.value, name: nama.value, text: teks.value};
    }
    tombol.disabled = true;
    kabar("Mengirim…");
    kirimPost("/dev/wa/api/send", isi)
      .then(function (j) {
        if (j.wamid) {
          teks.value = ""; berkas.value = ""; tampilBerkas();
          kabar(j.error ? "Pesan tersimpan, tetapi webhook SAPA gagal: " + j.error : "");
        } else {
          kabar(j.error || "Pesan gagal dikirim.");
        }
        terakhir = null;
        muat();
      })
      .catch(function () { kabar("Server tidak dapat dihubungi."); })
      .then(function () { tombol.disabled = false; teks.focus(); });
  });

  chat.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.pilih") : null;
    if (!b) { return; }
    b.disabled = true;
    kabar("Mengirim pilihan…");
    var isi = {phone_number_id: nomor.value, from: wa.value, name: nama.value,
      reply: {wamid: b.getAttribute("data-wamid"), id: b.getAttribute("data-id")}};
    kirimPost("/dev/wa/api/send", isi)
      .then(function (j) {
        kabar(j.wamid ? (j.error ? "Pilihan tersimpan, tetapi webhook SAPA gagal: " + j.error : "")
          : (j.error || "Pilihan gagal dikirim."));
        terakhir = null;
        muat();
      })
      .catch(function () { kabar("Server tidak dapat dihubungi."); })
      .then(function () { b.disabled = false; });
  });

  document.addEventListener("visibilitychange", muat);
  setInterval(muat, 2000);
  muat();
})();
</script>
</body>
</html>
"""
