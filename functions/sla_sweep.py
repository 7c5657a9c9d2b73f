"""HTTP function (scheduled every few minutes): steps past their mutu baku, cases past the
lead-time target, reminders to residents the case waits on, and expiry of abandoned requests."""

from __future__ import annotations

from typing import Any

import flask

from _edge import authorize_task, http_function, json_response
from sapa.bootstrap import container
from sapa.services import sla_sweep as sla


@http_function
def sla_sweep(request: flask.Request) -> Any:
    c = container()
    authorize_task(c, request)  # Cloud Scheduler calls it like a queue task
    return json_response({"status": "ok", **sla.sweep(c)})
