"""HTTP function (scheduled daily): apply the retention schedule to closed cases."""

from __future__ import annotations

from typing import Any

import flask

from _edge import authorize_task, http_function, json_response
from sapa.bootstrap import container
from sapa.services import retention


@http_function
def retention_sweep(request: flask.Request) -> Any:
    c = container()
    authorize_task(c, request)  # Cloud Scheduler calls it like a queue task
    return json_response({"status": "ok", **retention.sweep(c)})
