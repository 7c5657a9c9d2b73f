"""The embedded queue's worker: takes the due tasks of a `SqliteTaskQueue` and delivers each the
way Cloud Tasks calls an HTTP target, completing or failing it (the queue then retries it with
backoff or dead-letters it)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sapa.adapters.embedded.sqlite_queue import LeasedTask, SqliteTaskQueue

if TYPE_CHECKING:  # the worker's HTTP client: a function that only enqueues never loads it
    import requests

log = logging.getLogger(__name__)


class TaskWorker:
    """Delivers a `SqliteTaskQueue`'s tasks the way Cloud Tasks calls an HTTP target.

    Each task is a `POST {target_base}/tasks/{kind}` with the payload as JSON body, a bearer
    `token`, and Cloud Tasks' `X-CloudTasks-*` headers. A 2xx answer completes the task;
    anything else (other status, connection error, timeout after `request_timeout`) fails it,
    which retries with backoff or dead-letters it. `start` runs `concurrency` daemon threads that
    wake on every enqueue (through a queue listener) or after `poll_interval` seconds; `stop`
    ends them. `run_once` delivers what is due synchronously, for tests and scripts.

    Proxy settings from the environment are ignored: the target is normally this machine.
    """

    def __init__(
        self,
        queue: SqliteTaskQueue,
        target_base: str,
        token: str,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.25,
        lease_seconds: float = 60.0,
        request_timeout: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= request_timeout:
            raise ValueError("lease_seconds must exceed request_timeout")
        self.queue = queue
        self.target_base = target_base.rstrip("/")
        self._token = token
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.request_timeout = request_timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"TaskWorker(target_base={self.target_base!r}, concurrency={self.concurrency})"

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between `start` and `stop`."""
        return bool(self._threads)

    def start(self) -> None:
        """Start the delivery threads (daemon threads; call `stop` for a clean shutdown)."""
        with self._cond:
            if self._threads:
                raise RuntimeError("task worker already started")
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._loop, name=f"sapa-tasks-{i}", daemon=True)
                for i in range(self.concurrency)
            ]
        self.queue.add_listener(self.wake)
        for thread in self._threads:
            thread.start()
        log.info("task worker started: %d threads → %s", self.concurrency, self.target_base)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, waiting up to `timeout` seconds in all for deliveries in flight.

        A delivery still running after that finishes in the background; if the process exits
        first, its lease expires and the task is delivered again.
        """
        self.queue.remove_listener(self.wake)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("task worker stop: %s still delivering", ", ".join(alive))
        elif threads:
            log.info("task worker stopped")

    def wake(self) -> None:
        """Make idle delivery threads look for due tasks now (the queue's enqueue listener)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- delivery -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Lease and deliver, one by one on this thread, every task due now.

        Returns the number of delivery attempts made (successful or not).
        """
        attempts = 0
        with self._session() as session:
            while leased := self.queue.lease(1, self.lease_seconds):
                for task in leased:
                    self.deliver(task, session)
                    attempts += 1
        return attempts

    def deliver(self, task: LeasedTask, session: requests.Session | None = None) -> bool:
        """POST one leased task to its target and complete or fail it; True on a 2xx answer."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self._token}",
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": task.kind,
            "X-CloudTasks-TaskName": task.name,
            "X-CloudTasks-TaskRetryCount": str(task.retry_count),
            "X-CloudTasks-TaskExecutionCount": str(task.execution_count),
            "X-CloudTasks-TaskETA": f"{task.schedule_at.timestamp():.6f}",
        }
        if task.last_status is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(task.last_status)
        import requests

        body = json.dumps(task.payload, ensure_ascii=False, separators=(",", ":")).encode()
        url = f"{self.target_base}/tasks/{task.kind}"
        own = session is None
        http = session if session is not None else self._new_session()
        try:
            response = http.post(
                url, data=body, headers=headers, timeout=self.request_timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            self.queue.fail(task.id, f"{type(exc).__name__}: {exc}", retry_count=task.retry_count)
            return False
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("task %s (%s): delivery crashed", task.name, task.kind)
            self.queue.fail(task.id, f"{type(exc).__name__}: {exc}", retry_count=task.retry_count)
            return False
        finally:
            if own:
                http.close()
        if 200 <= response.status_code < 300:
            self.queue.complete(task.id)
            log.debug("task %s (%s) delivered: %d", task.name, task.kind, response.status_code)
            return True
        excerpt = " ".join(response.text[:200].split())
        self.queue.fail(
            task.id,
            f"HTTP {response.status_code}: {excerpt}",
            status=response.status_code,
            retry_count=task.retry_count,
        )
        return False

    @staticmethod
    def _new_session() -> requests.Session:
        import requests

        session = requests.Session()
        session.trust_env = False
        return session

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        session = self._new_session()
        try:
            yield session
        finally:
            session.close()

    def _loop(self) -> None:
        with self._session() as session:
            while True:
                with self._cond:
                    if self._stopping:
                        return
                    generation = self._generation
                try:
                    leased = self.queue.lease(1, self.lease_seconds)
                    for task in leased:
                        self.deliver(task, session)
                except Exception:
                    log.exception("task worker: queue error")
                    leased = []
                if leased:
                    continue
                with self._cond:
                    if not self._stopping and self._generation == generation:
                        self._cond.wait(self.poll_interval)
