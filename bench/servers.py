"""Serving a floor the way the SUT is served: waitress on a random port, the SUT's adjustments."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import flask

from sapa.dev.localserver import function_app


class WaitressServer:
    """`app` on 127.0.0.1:<random port> in a thread, with waitress's settings copied from
    `like` (a LocalStack's server) so that both sides have the same thread count and timeouts."""

    def __init__(self, app: Callable[..., Any], like: Any) -> None:
        from waitress.server import create_server

        adj = like.adj
        self.threads = int(adj.threads)
        self.server: Any = create_server(
            app,
            host="127.0.0.1",
            port=0,
            threads=adj.threads,
            channel_timeout=adj.channel_timeout,
            connection_limit=adj.connection_limit,
            backlog=adj.backlog,
            clear_untrusted_proxy_headers=adj.clear_untrusted_proxy_headers,
        )
        self.port = int(self.server.effective_port)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.run, name="floor-http", daemon=True)

    def start(self) -> WaitressServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        done = threading.Event()
        server = self.server

        def close_all() -> None:  # in the server's loop thread, as LocalStack.stop does
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.handle_close()
            server.close()
            done.set()

        if self._thread.is_alive():
            server.trigger.pull_trigger(close_all)
            done.wait(timeout=5)
        if not done.is_set():
            server.close()
        self._thread.join(timeout=5)


def serve_function(
    fn: Callable[[flask.Request], Any], like: Any, max_mb: int = 10
) -> WaitressServer:
    """An HTTP function wrapped as functions-framework (and LocalStack) wrap it, served."""
    return WaitressServer(function_app(fn, max_mb), like).start()


class WaitressWarnings(logging.Handler):
    """Collects waitress's warnings instead of printing them: "Task queue depth is N" (requests
    waiting for one of its threads) and "connection limit reached" (connections beyond
    `connection_limit` wait in the listen backlog) are expected under a benchmark's load, and are
    reported as figures (deepest queue, how often the limit was hit) rather than as noise."""

    _DEPTH = re.compile(r"Task queue depth is (\d+)")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.max_queue_depth = 0
        self.connection_limit_hits = 0
        self.other: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        depth = self._DEPTH.search(message)
        if depth:
            self.max_queue_depth = max(self.max_queue_depth, int(depth.group(1)))
        elif "connection limit" in message:
            self.connection_limit_hits += 1
        elif len(self.other) < 20:
            self.other.append(f"{record.levelname} {record.name}: {message}")

    def summary(self) -> dict[str, Any]:
        return {
            "max_queue_depth": self.max_queue_depth,
            "connection_limit_hits": self.connection_limit_hits,
            "other": self.other,
        }


@contextmanager
def captured_waitress_warnings() -> Iterator[WaitressWarnings]:
    logger = logging.getLogger("waitress")
    handler = WaitressWarnings()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
