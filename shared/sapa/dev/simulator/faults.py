"""Fault injection, for tests: the Graph API answering errors, or hanging first, on demand.

`POST /sim/control/faults` with `{"status": 500, "count": 3}` fails the next three Graph API
calls; `"seconds": 5` fails every call for five seconds instead; `"delay": 12` hangs each
failing call that long before answering (a provider that times out); `{"status": 0}` clears it.
`GET` shows the fault in force.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, Response, request

from sapa.dev.simulator.shapes import json_answer, meta_error


class Faults:
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


def injected(faults: Faults) -> Response | None:
    """The failing answer of a Graph API call while a fault is set (after its delay), as Meta
    words such failures; None when no fault is in force."""
    fault = faults.take()
    if fault is None:
        return None
    status, code, message, delay = fault
    if delay > 0:
        time.sleep(delay)
    if status == 429:
        default = (80007, "(#80007) Rate limit hit")
    elif status >= 500:
        default = (1, "An unknown error occurred (simulated fault)")
    else:
        default = (100, "(#100) Simulated fault")
    return meta_error(status, message or default[1], code=code or default[0])


def add_fault_controls(app: Flask, faults: Faults) -> None:
    """`/sim/control/faults`: set (POST) or read (GET) the fault in force."""

    @app.route("/sim/control/faults", methods=["GET", "POST"])
    def control_faults() -> Response:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return json_answer({"error": "JSON object expected"}, 400)
            status, count = body.get("status", 0), body.get("count", 1)
            code, message = body.get("code"), body.get("message")
            seconds, delay = body.get("seconds", 0), body.get("delay", 0)
            for name, value in (("seconds", seconds), ("delay", delay)):
                if not isinstance(value, int | float) or not 0 <= value <= 3600:
                    return json_answer(
                        {"error": f"{name} must be a number of seconds (0..3600)"}, 400
                    )
            if not isinstance(status, int) or not (status == 0 or 400 <= status <= 599):
                return json_answer({"error": "status must be 0 or 400..599"}, 400)
            if not isinstance(count, int) or count < 0:
                return json_answer({"error": "count must be a non-negative integer"}, 400)
            if code is not None and not isinstance(code, int):
                return json_answer({"error": "code must be an integer"}, 400)
            if message is not None and not isinstance(message, str):
                return json_answer({"error": "message must be a string"}, 400)
            faults.set(status, count, code, message, seconds=float(seconds), delay=float(delay))
        return json_answer(faults.state())
