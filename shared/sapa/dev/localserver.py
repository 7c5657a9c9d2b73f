"""The embedded default: every function, the task worker and the simulator in one process."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import flask

from sapa import bootstrap, log
from sapa.adapters.embedded.data_lock import DataDirInUse, DataDirLock
from sapa.bootstrap import Container
from sapa.settings import Settings, load_settings

logger = logging.getLogger(__name__)

# URL path → entry point name in functions/main.py. The same names are the Cloud Functions.
HTTP_MOUNTS = {
    "/wa/webhook": "wa_webhook",
    "/guestbook": "guestbook",
    "/staff": "staff",
    "/verify": "verify",
    "/esign/callback": "esign_callback",
    "/approval": "approval",
    "/jobs/retention": "retention_sweep",
    "/jobs/sla": "sla_sweep",
}
TASK_KINDS = (
    "notify",
    "command",
    "media_store",
    "precheck",
    "siak_handoff",
    "esign_request",
    "deliver",
)
SIMULATOR_PREFIXES = ("/sim/", "/dev/wa")
RECOVERY_INTERVAL_SECONDS = 60.0
RETENTION_EVERY_TICKS = 60  # hourly
SLA_EVERY_TICKS = 5  # every five minutes

# What ends the server (a terminal's Ctrl+C, a supervisor's stop), and how long a stop may
# take before the process ends anyway (Cloud Run allows 10 s after SIGTERM).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
STOP_SECONDS = 4.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def default_source() -> Path:
    """functions/main.py of the repository this module runs from (shared/sapa/dev/ → root)."""
    return Path(__file__).resolve().parents[3] / "functions" / "main.py"


def load_functions(source: Path) -> ModuleType:
    """Import functions/main.py the way functions-framework does (by file path)."""
    spec = importlib.util.spec_from_file_location("sapa_functions_main", source)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def function_app(fn: Callable[[flask.Request], Any], max_mb: int) -> flask.Flask:
    """Serve one HTTP function the way functions-framework does: every path and method."""
    app = flask.Flask(f"sapa-{getattr(fn, '__name__', 'fn')}")
    app.config["MAX_CONTENT_LENGTH"] = max_mb * 1024 * 1024 * 8 + 1024 * 1024
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    def view(path: str = "") -> Any:
        return fn(flask.request._get_current_object())  # type: ignore[attr-defined]

    app.add_url_rule("/", "root", view, methods=methods)
    app.add_url_rule("/<path:path>", "any", view, methods=methods)
    return app


class Dispatcher:
    """Route by path prefix; mounted apps see their prefix as SCRIPT_NAME, like a function URL."""

    def __init__(self, root: WSGIApp, mounts: dict[str, WSGIApp], passthrough: WSGIApp | None):
        self.root = root
        self.mounts = sorted(mounts.items(), key=lambda kv: -len(kv[0]))
        self.passthrough = passthrough

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if self.passthrough is not None and path.startswith(SIMULATOR_PREFIXES):
            return self.passthrough(environ, start_response)
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :] or "/"
                return app(environ, start_response)
        return self.root(environ, start_response)


def root_app(c: Container) -> flask.Flask:
    app = flask.Flask("sapa-root")

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/")
    def index() -> Any:
        rows = "".join(
            f"<tr><td>{s.number}</td><td>{s.kegiatan}</td><td>{s.role}</td>"
            f"<td>{int(s.mutu_baku_seconds)} d</td></tr>"
            for s in c.sop.steps
        )
        html = (
            "<!doctype html><html lang=id><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            "<title>SAPA</title><body style='font-family:system-ui;max-width:48rem;margin:auto'>"
            "<h1>SAPA · Disdukcapil Kabupaten Gowa</h1>"
            "<ul><li><a href='/dev/wa'>Simulator WhatsApp (bermain sebagai pemohon)</a></li>"
            "<li><a href='/staff/login'>Ruang kerja petugas</a></li></ul>"
            f"<h2>{c.sop.title}</h2><table border=1 cellpadding=4>"
            "<tr><th>#</th><th>Kegiatan</th><th>Pelaksana</th><th>Mutu baku</th></tr>"
            f"{rows}</table></body></html>"
        )
        return flask.Response(html, mimetype="text/html")

    return app


def build_app(c: Container, source: Path | None = None) -> Dispatcher:
    main = load_functions(source or default_source())
    max_mb = c.settings.max_upload_mb
    mounts: dict[str, WSGIApp] = {
        prefix: function_app(getattr(main, name), max_mb) for prefix, name in HTTP_MOUNTS.items()
    }
    for kind in TASK_KINDS:
        mounts[f"/tasks/{kind}"] = function_app(getattr(main, kind), max_mb)
    simulator = None
    if c.settings.sapa_env == "local":
        from sapa.dev.simulator import create_simulator_app

        base = c.settings.public_base_url.rstrip("/")
        simulator = create_simulator_app(
            db_path=c.settings.sapa_data_dir / "wa_simulator.db",
            token=c.settings.secret("wa_token"),
            app_secret=c.settings.secret("wa_app_secret"),
            webhook_url=f"{base}/wa/webhook",
            phone_numbers=c.phone_numbers,
            kecamatan_names={k.code: k.name for k in c.region.kecamatan},
            public_base=base,
            redeliver=True,  # like Meta: an unacknowledged webhook is posted again
        )
    return Dispatcher(root_app(c), mounts, simulator)


class LocalStack:
    """The server, the task worker and recovery, started and stopped together.

    The socket is bound first, so port 0 picks a free port and the public URL (links in
    WhatsApp messages, the webhook the simulator calls, task targets) names the real one."""

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 0,
        source: Path | None = None,
    ) -> None:
        from waitress.server import create_server

        self.server = create_server(
            self._wsgi,
            host=host,
            port=port,
            threads=16,
            channel_timeout=120,
            clear_untrusted_proxy_headers=True,
        )
        self.port = int(self.server.effective_port)
        # One server per data directory (its queue, its worker): a second one refuses here.
        self.lock = DataDirLock(settings.sapa_data_dir)
        try:
            self.lock.acquire(url=f"http://{host}:{self.port}")
        except BaseException:
            self.server.close()
            raise
        if port == 0:
            settings = settings.model_copy(
                update={"public_base_url": f"http://{host}:{self.port}", "task_target_base": None}
            )
        self.c = Container(settings)
        self.base_url = settings.public_base_url.rstrip("/")
        bootstrap.install(self.c)
        self.app = build_app(self.c, source)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.worker: Any = None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.app(environ, start_response)

    def start(self, *, worker: bool = True) -> None:
        """Serve, and deliver tasks: with the embedded queue by its worker (unless `worker` is
        False); with QUEUE=cloudtasks by Cloud Tasks itself, over HTTP to this server's task
        endpoints (TASK_URL_TEMPLATE), so no worker runs here. On the Cloud Tasks emulator,
        which starts empty, the queues are created first (terraform does it in the cloud)."""
        from sapa.services.recovery import requeue_outboxes

        if self.c.settings.queue == "cloudtasks" and self.c.settings.tasks_emulator_host:
            from sapa.adapters.cloud.cloud_tasks import CloudTasksQueue

            queue = self.c.queue
            assert isinstance(queue, CloudTasksQueue)
            queue.ensure_queues()
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        if worker and self.c.settings.queue == "sqlite":
            self.start_worker()
        requeued = requeue_outboxes(self.c)
        if requeued:
            logger.info("requeued %d outbox tasks after restart", requeued)
        self._recovery = threading.Thread(target=self._recover, name="recovery", daemon=True)
        self._recovery.start()

    def _recover(self) -> None:
        """Queue what a queue outage left in case outboxes (the cloud's sweep does the same)."""
        from sapa.services import retention, sla_sweep
        from sapa.services.recovery import requeue_outboxes

        ticks = 0
        while not self._stopping.wait(RECOVERY_INTERVAL_SECONDS):
            ticks += 1
            try:
                requeue_outboxes(self.c)
                if ticks % SLA_EVERY_TICKS == 0:
                    sla_sweep.sweep(self.c)  # Cloud Scheduler every few minutes in the cloud
                if ticks % RETENTION_EVERY_TICKS == 0:
                    retention.sweep(self.c)  # Cloud Scheduler does this daily in the cloud
            except Exception:
                logger.exception("background upkeep failed; will try again")

    def start_worker(self) -> None:
        from sapa.adapters.embedded.sqlite_queue import SqliteTaskQueue
        from sapa.adapters.embedded.task_worker import TaskWorker

        queue = self.c.queue
        assert isinstance(queue, SqliteTaskQueue)
        # This process is the data directory's one worker: leases still held were held by a
        # predecessor that died (a crash, a kill) and would delay those tasks by a minute.
        released = queue.release_leases()
        if released:
            logger.info("released %d task leases left by a stopped server", released)
        self.worker = TaskWorker(
            queue,
            self.c.settings.task_base,
            self.c.settings.secret("task_token"),
            concurrency=self.c.settings.task_workers,
        )
        self.worker.start()

    def stop(self) -> None:
        began = time.monotonic()
        self._stopping.set()
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        worker_done = time.monotonic()
        if self.app.passthrough is not None:  # the simulator's status and redelivery threads
            from sapa.dev.simulator import EXTENSION

            sim = getattr(self.app.passthrough, "extensions", {}).get(EXTENSION)
            if sim is not None:
                sim.close()
        # Our own keep-alive clients (the WhatsApp adapter calling the simulator) hold server
        # channels open; close them so the server loop ends now rather than at a timeout.
        wa = self.c.__dict__.get("whatsapp")
        if wa is not None and hasattr(wa, "close"):
            wa.close()
        # Close the remaining keep-alive channels (a browser, say) inside the server's own loop
        # thread, then the server: its loop ends when no channel is left.
        done = threading.Event()
        server = self.server

        def close_all() -> None:
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.handle_close()
            server.close()  # in the loop thread: no socket is closed under a running select()
            done.set()

        if self._thread is not None and self._thread.is_alive():
            # OSError: the loop already closed its wake-up pipe, so it is ending by itself
            with contextlib.suppress(OSError):
                server.trigger.pull_trigger(close_all)
            done.wait(timeout=5)
        if not done.is_set():
            with contextlib.suppress(OSError):
                server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # waitress's request threads: let them finish and end (nothing else stops them)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        bootstrap.install(None)
        self.lock.release()
        logger.info(
            "stopped in %.2f s (task worker %.2f s)",
            time.monotonic() - began,
            worker_done - began,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{args.host}:{args.port}")
    log.setup(os.environ.get("LOG_LEVEL", "INFO"))
    settings = load_settings()
    # No signal handler: SIGTERM and SIGINT are blocked before any thread starts (threads
    # inherit the mask) and the main thread takes them with sigwait. A handler would run
    # between any two bytecodes of the main thread, even inside a lock it holds (an Event's
    # condition): that deadlocked the stop. Blocked, a signal is simply pending until taken.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        stack = LocalStack(settings, args.host, args.port, args.source)
    except DataDirInUse as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    stack.start()
    logger.info(
        "SAPA listening on %s (data in %s)", settings.public_base_url, settings.sapa_data_dir
    )
    print(f"SAPA berjalan di {settings.public_base_url}  (Ctrl+C untuk berhenti)", flush=True)
    signal.sigwait(STOP_SIGNALS)
    print("SAPA berhenti ...", flush=True)
    return stop_within(stack, STOP_SECONDS)


def stop_within(stack: LocalStack, seconds: float) -> int:
    """Stop the stack; if that takes longer than `seconds`, end the process anyway: what was
    in flight is kept (the queue's leases are released at the next start, the database is
    durable), and a supervisor or a terminal waits no longer. Signals that come meanwhile
    (a second Ctrl+C, the process group's SIGTERM) change nothing."""
    stopper = threading.Thread(target=stack.stop, name="stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        logger.warning("stop took longer than %.0f s: ending the process now", seconds)
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
