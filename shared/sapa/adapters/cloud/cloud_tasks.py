"""TaskQueue on Google Cloud Tasks, and the check of the OIDC token Cloud Tasks sends with a task.

One queue per task kind, configured in `sapa/data/queues.json` (retry policy and rates; terraform
reads the same file): queue id `<prefix><kind with - for _>`, e.g. `sapa-media-store`. A task is
an HTTP POST of its JSON payload to the kind's function URL (`url_for(kind)`, TASK_URL_TEMPLATE)
with an OIDC token of the task service account whose audience is that URL; the function checks
it with `verify_task_token`. A named task gets a deterministic Cloud Tasks id, so enqueueing it
again is answered `AlreadyExists` by Cloud Tasks and `enqueue` returns False.

Importing this module imports no client library (no google.cloud, no grpc, no google.auth):
those load when a queue is built or a token is checked (cold starts). Backend failures become
`TransientError`: the services keep such tasks in the case's outbox and queue them later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, cast

from sapa.domain.errors import Forbidden, PermanentError, TransientError, Unauthorized
from sapa.ports import Task

log = logging.getLogger(__name__)

# Cloud Tasks: a task id is letters, digits, "-" and "_", at most 500 characters; a queue id
# letters, digits and "-", at most 100.
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
_QUEUE_ID = re.compile(r"[A-Za-z0-9-]{1,100}")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")
_KEPT_PREFIX = 100  # characters of an odd name kept (readable) before its hash
_CREATE_TIMEOUT_SECONDS = 10.0

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def load_queue_config() -> dict[str, dict[str, float]]:
    """kind → that queue's retry policy and rates, from sapa/data/queues.json."""
    raw = resources.files("sapa.data").joinpath("queues.json").read_text("utf-8")
    queues: dict[str, dict[str, float]] = json.loads(raw)["queues"]
    return queues


def queue_id(prefix: str, kind: str) -> str:
    """The Cloud Tasks queue id of a task kind: `sapa-` + the kind with hyphens."""
    qid = f"{prefix}{kind.replace('_', '-')}"
    if not _QUEUE_ID.fullmatch(qid):
        raise ValueError(f"invalid Cloud Tasks queue id {qid!r} (prefix {prefix!r}, kind {kind!r})")
    return qid


def task_id(name: str) -> str:
    """A valid Cloud Tasks task id for a task name, the same for the same name.

    A name that is already valid is kept as it is (it is what the handler then sees in
    `X-CloudTasks-TaskName`). Any other name, too long or with other characters, becomes its
    first characters with the odd ones replaced, then a hash of the whole name: two names that
    differ anywhere get different ids."""
    if _TASK_ID.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    readable = _NOT_ID.sub("-", name)[:_KEPT_PREFIX].strip("-_")
    return f"{readable}--{digest}" if readable else f"h--{digest}"


def _transient_types() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gx
    from google.auth import exceptions as auth_exceptions

    return (
        gx.ServerError,  # 5xx: unavailable, internal, unknown, deadline exceeded, ...
        gx.TooManyRequests,  # incl. RESOURCE_EXHAUSTED (quota, queue rate)
        gx.Aborted,
        gx.Cancelled,
        gx.RetryError,
        # A queue that is missing or that we may not use is a deployment fault: the tasks wait
        # in the outboxes (logged as errors) until it is fixed, rather than failing requests.
        gx.NotFound,
        gx.FailedPrecondition,
        gx.PermissionDenied,
        gx.Unauthenticated,
        auth_exceptions.TransportError,
        auth_exceptions.RefreshError,
        TimeoutError,
        ConnectionError,
    )


class CloudTasksQueue:
    """The TaskQueue port on Cloud Tasks. Thread-safe (the gRPC client is shared).

    `url_for(kind)` is the HTTP target (and OIDC audience) of a kind. With `service_account`
    every task carries an OIDC token of that account. Without one (only against the emulator,
    which sends no OIDC token) `bearer_token` is sent as a static Authorization header instead,
    which is what the local task endpoints check."""

    def __init__(
        self,
        *,
        project: str,
        location: str,
        url_for: Callable[[str], str],
        service_account: str | None = None,
        bearer_token: str | None = None,
        prefix: str = "sapa-",
        emulator_host: str | None = None,
        client: Any = None,
        queues: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        if not project or not location:
            raise PermanentError("Cloud Tasks needs a project and a location")
        if not service_account and not bearer_token:
            raise PermanentError("Cloud Tasks tasks need a service account for their OIDC token")
        self.project = project
        self.location = location
        self.prefix = prefix
        self.url_for = url_for
        self.service_account = service_account
        self._bearer = bearer_token
        self.queues = dict(queues if queues is not None else load_queue_config())
        for kind in self.queues:
            queue_id(prefix, kind)  # a bad prefix fails here, not at the first task
        if client is None:
            client = _client(emulator_host)
        self.client = client

    def queue_path(self, kind: str) -> str:
        if kind not in self.queues:
            raise ValueError(f"no Cloud Tasks queue is configured for task kind {kind!r}")
        location = f"projects/{self.project}/locations/{self.location}"
        return f"{location}/queues/{queue_id(self.prefix, kind)}"

    def build_request(self, task: Task) -> Any:
        """The CreateTaskRequest for `task` (no call is made)."""
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2, timestamp_pb2  # type: ignore[import-untyped,unused-ignore]

        parent = self.queue_path(task.kind)
        if not isinstance(task.payload, dict):
            raise TypeError("task payload must be a dict")
        body = json.dumps(task.payload, ensure_ascii=False, separators=(",", ":")).encode()
        url = self.url_for(task.kind)
        headers = {"Content-Type": "application/json"}
        http = tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST, url=url, headers=headers, body=body
        )
        if self.service_account:
            http.oidc_token = tasks_v2.OidcToken(
                service_account_email=self.service_account, audience=url
            )
        else:
            http.headers["Authorization"] = f"Bearer {self._bearer}"
        ctask = tasks_v2.Task(http_request=http)
        if task.name is not None:
            ctask.name = f"{parent}/tasks/{task_id(task.name)}"
        if task.schedule_at is not None:
            if task.schedule_at.tzinfo is None:
                raise ValueError("schedule_at must be timezone-aware")
            ts = timestamp_pb2.Timestamp()
            ts.FromDatetime(task.schedule_at)
            ctask.schedule_time = ts
        deadline = self.queues[task.kind].get("timeout_seconds")
        if deadline:
            ctask.dispatch_deadline = duration_pb2.Duration(seconds=int(deadline))
        return tasks_v2.CreateTaskRequest(parent=parent, task=ctask)

    def enqueue(self, task: Task) -> bool:
        """Create the task in its kind's queue. False when Cloud Tasks already has (or recently
        had) a task of that name; TransientError when Cloud Tasks cannot be reached or refuses
        for a reason that deploying or waiting fixes; PermanentError for a task it rejects."""
        request = self.build_request(task)
        from google.api_core import exceptions as gx

        try:
            self.client.create_task(request=request, timeout=_CREATE_TIMEOUT_SECONDS)
        except gx.AlreadyExists:
            log.debug("task %s (%s) already exists: deduped", task.name, task.kind)
            return False
        except gx.InvalidArgument as exc:
            raise PermanentError(
                "Cloud Tasks rejected the task", kind=task.kind, error=str(exc)
            ) from exc
        except Exception as exc:
            if isinstance(exc, _transient_types()):
                level = logging.WARNING
                if not isinstance(exc, gx.ServerError | gx.TooManyRequests | gx.RetryError):
                    level = logging.ERROR  # a deployment fault: someone has to act
                log.log(level, "Cloud Tasks refused a %s task: %s", task.kind, type(exc).__name__)
                raise TransientError(
                    "Cloud Tasks is unavailable or refused the task",
                    kind=task.kind,
                    error=str(exc),
                ) from exc
            raise
        return True

    def ensure_queues(self) -> list[str]:
        """Create (or update) every configured queue with its retry policy and rates. Terraform
        does this in a deployment; tests and one-off setups call it. Returns the queue names."""
        from google.api_core import exceptions as gx
        from google.cloud import tasks_v2
        from google.protobuf import duration_pb2  # type: ignore[import-untyped,unused-ignore]

        parent = f"projects/{self.project}/locations/{self.location}"
        names = []
        for kind, cfg in self.queues.items():
            queue = tasks_v2.Queue(
                name=self.queue_path(kind),
                rate_limits=tasks_v2.RateLimits(
                    max_dispatches_per_second=float(cfg["max_dispatches_per_second"]),
                    max_concurrent_dispatches=int(cfg["max_concurrent_dispatches"]),
                ),
                retry_config=tasks_v2.RetryConfig(
                    max_attempts=int(cfg["max_attempts"]),
                    min_backoff=duration_pb2.Duration(seconds=int(cfg["min_backoff_seconds"])),
                    max_backoff=duration_pb2.Duration(seconds=int(cfg["max_backoff_seconds"])),
                    max_doublings=16,  # doubles from min to max, as terraform (infra/tasks.tf)
                ),
            )
            try:
                self.client.create_queue(parent=parent, queue=queue)
            except gx.AlreadyExists:
                self.client.update_queue(queue=queue)
            names.append(queue.name)
        return names


def _client(emulator_host: str | None) -> Any:
    from google.cloud import tasks_v2

    if not emulator_host:
        return tasks_v2.CloudTasksClient()
    import grpc  # type: ignore[import-untyped,unused-ignore]
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    # The emulator speaks plain gRPC and wants no credentials.
    channel = grpc.insecure_channel(emulator_host)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


# ---- the function's side: the OIDC token ------------------------------------------------------

_MIN_REFETCH_SECONDS = 60.0  # an unknown key id refetches the keys at most this often
_DEFAULT_KEEP_SECONDS = 3600.0  # without a Cache-Control max-age
_MAX_AGE = re.compile(r"max-age=(\d+)")


class _CertsCache:
    """Google's public keys per URL, kept as long as the answer's Cache-Control allows, so a
    warm instance does not fetch them for every task. Used as google-auth's transport request
    (a callable that returns a response with `status`, `headers` and `data`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, float, Any]] = {}  # url → (fetched, until, answer)
        self._request: Any = None
        self.fetches = 0

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        now = time.monotonic()
        if method == "GET":
            with self._lock:
                hit = self._answers.get(url)
            if hit is not None and hit[1] > now:
                return hit[2]
        if self._request is None:
            from google.auth.transport import requests as greq

            self._request = greq.Request()
        kwargs.setdefault("timeout", 10)
        answer = self._request(url, method=method, **kwargs)
        if method == "GET" and answer.status == 200:
            found = _MAX_AGE.search(str(answer.headers.get("cache-control", "")))
            keep = float(found.group(1)) if found else _DEFAULT_KEEP_SECONDS
            with self._lock:
                self.fetches += 1
                self._answers[url] = (now, now + keep, answer)
        return answer

    def forget_if_old(self, url: str) -> bool:
        """Drop the kept keys of `url` if fetched a while ago (a key rotated in since)."""
        with self._lock:
            hit = self._answers.get(url)
            if hit is None or time.monotonic() - hit[0] < _MIN_REFETCH_SECONDS:
                return False
            del self._answers[url]
            return True

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


CERTS = _CertsCache()


def verify_task_token(
    token: str, *, audience: str, service_account: str, certs_url: str
) -> dict[str, Any]:
    """The claims of a Google-signed OIDC ID token from Cloud Tasks or Cloud Scheduler, after
    checking its RS256 signature against Google's keys (`certs_url`), expiry, issuer
    (accounts.google.com), audience (the function's own URL) and that it names
    `service_account` with a verified email.

    Raises Unauthorized for a token that is not genuine, expired or meant for another audience,
    Forbidden for a genuine token of another account, TransientError when the keys cannot be
    fetched."""
    if not token:
        raise Unauthorized("task token missing")
    from google.auth import exceptions as gexc
    from google.oauth2 import id_token

    for attempt in range(2):
        try:
            claims: dict[str, Any] = dict(
                id_token.verify_token(
                    token,
                    cast(Any, CERTS),  # a google-auth transport request, by duck typing
                    audience=audience,
                    certs_url=certs_url,
                    clock_skew_in_seconds=10,
                )
            )
            break
        except gexc.TransportError as exc:
            raise TransientError("Google's public keys could not be fetched") from exc
        except (ValueError, gexc.GoogleAuthError) as exc:
            unknown_key = "Certificate for key id" in str(exc)
            if attempt == 0 and unknown_key and CERTS.forget_if_old(certs_url):
                continue  # Google rotated its keys since we fetched them
            raise Unauthorized("task token invalid", reason=type(exc).__name__) from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Unauthorized("task token from another issuer")
    if claims.get("email") != service_account or claims.get("email_verified") is not True:
        raise Forbidden("task token of another account")
    return claims
