"""The simulator's engine: `WaSimulator` holds its state (the store, the faults, the service
numbers) and signs and delivers webhooks to SAPA as Meta does: a resident's messages, the
sent/delivered statuses of SAPA's messages (in the background), and, with `redeliver`, every
webhook not acknowledged with a 2xx again with backoff, also after a restart."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import requests

from sapa.dev.simulator.faults import Faults
from sapa.dev.simulator.store import Store
from sapa.domain.values import BSUID

log = logging.getLogger(__name__)

WABA_ID = "SIMWABA"
WEBHOOK_TIMEOUT = 10.0
REDELIVERY_POLL = 0.5  # seconds between looks for webhooks to deliver again
REDELIVERY_MAX_BACKOFF = 30.0
REDELIVERY_HORIZON = 24 * 3600.0  # Meta retries for days; a day is plenty for development


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
        self.store = Store(db_path)
        self.faults = Faults()
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
        """Stop the redelivery thread and the status thread (the statuses queued stay owed
        and are reported after the next start; without redelivery they are reported first)."""
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
                    # Stopping: what is queued stays owed in the store, and the redelivery
                    # thread reports it after the next start (without redelivery, report it
                    # now: nothing else would).
                    if self._stop.wait(self.status_delay) and self.redeliver:
                        return
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
