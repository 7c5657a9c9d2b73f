"""The simulator as one Flask app: its Graph API, its test controls and its chat page."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from sapa.dev.simulator.chat import add_chat
from sapa.dev.simulator.faults import add_fault_controls
from sapa.dev.simulator.graph import add_graph_api
from sapa.dev.simulator.shapes import json_answer, meta_error
from sapa.dev.simulator.webhooks import WaSimulator

EXTENSION = "sapa_wa_simulator"
"""Key of the `WaSimulator` in `app.extensions`."""

MAX_REQUEST_BYTES = 101 * 1024 * 1024


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
    - `POST /sim/control/webhook`: sign and post any webhook body, as Meta would.
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

    add_graph_api(app, sim)

    @app.post("/sim/control/webhook")
    def control_webhook() -> Response:
        """Sign and post any webhook body, as Meta would: every shape of notification
        (reactions, edits, system notices, template updates, ...) can be played by hand."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return json_answer({"error": "Isi permintaan harus berupa objek JSON."}, 400)
        code, error = sim.post_webhook(body)
        return json_answer({"webhook_status": code, "error": error})

    add_fault_controls(app, sim.faults)
    add_chat(app, sim)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> BaseResponse:
        status = exc.code or 500
        if request.path.startswith(("/sim/graph/", "/sim/media/")):
            return meta_error(status, f"({status}) {exc.name}", code=100)
        if request.path.startswith(("/dev/wa/api/", "/sim/")):
            text = (
                "Berkas terlalu besar."
                if status == 413
                else f"Permintaan tidak dapat diproses ({status})."
            )
            return json_answer({"wamid": None, "webhook_status": None, "error": text}, status)
        return exc.get_response()

    return app
