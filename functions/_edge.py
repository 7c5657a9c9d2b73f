"""The edge of every function: errors mapped to HTTP in one place, JSON parsing, task auth."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sapa.bootstrap import Container, container
from sapa.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PermanentError,
    SapaError,
    TransientError,
    Unauthorized,
    ValidationFailed,
)
from sapa.domain.texts import text

log = logging.getLogger("sapa.functions")

_STATUS: list[tuple[type[SapaError], int]] = [
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (ValidationFailed, 422),
    (Conflict, 409),
    (PermanentError, 400),
    (TransientError, 503),
]


def status_for(exc: SapaError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: SapaError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.code, "message": exc.message}
    if isinstance(exc, ValidationFailed) and exc.fields:
        body["fields"] = exc.fields
    if exc.code == "illegal_transition":
        body.update({k: exc.detail[k] for k in ("case_id", "state", "event", "actor")})
    return body


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    resp = flask.Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        mimetype="application/json",
    )
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


Handler = Callable[[flask.Request], Any]


def http_function(fn: Handler) -> Handler:
    """Map SapaError to its status with a JSON body in Indonesian; anything else is a 500 that
    is logged with its traceback and shows no internals."""

    @functools.wraps(fn)
    def wrapper(request: flask.Request) -> Any:
        limit = request.max_content_length
        if limit is not None and (request.content_length or 0) > limit:
            return _too_large(request, fn.__name__)
        try:
            response = fn(request)
            # functions-framework reads the body after the response (`read_request`): a body
            # the function did not need must not turn into a 500 there
            request.get_data()
            return response
        except SapaError as exc:
            status = status_for(exc)
            log.log(
                logging.WARNING if status < 500 else logging.ERROR, "%s: %s", exc.code, exc.message
            )
            return json_response(error_body(exc), status)
        except RequestEntityTooLarge:
            return _too_large(request, fn.__name__)
        except HTTPException as exc:
            log.warning("http error %s in %s", exc.code, fn.__name__)
            return exc.get_response()
        except Exception:
            log.exception("unhandled error in %s", fn.__name__)
            return json_response({"error": "internal", "message": text("internal")}, 500)

    return wrapper


def _too_large(request: flask.Request, name: str) -> flask.Response:
    """A body over the server's limit: the sender's fault, a short 413, no traceback. The body
    counts as read: functions-framework reads it again after the response, which would raise
    once more and turn the 413 into a 500."""
    request._cached_data = b""
    log.warning("request body over the size limit in %s", name)
    return json_response({"error": "too_large", "message": text("too_large")}, 413)


def wants_json(request: flask.Request) -> bool:
    """The caller asked for JSON (`Accept: application/json`), not a page."""
    return "application/json" in request.headers.get("Accept", "")


def same_secret(sent: str, expected: str) -> bool:
    """Compare a secret the caller sent with ours in constant time. As bytes: compare_digest
    raises TypeError on a str with non-ASCII characters, which would be a 500."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def client_of(c: Container, request: flask.Request) -> str:
    """The client's address as the platform's front end saw it (the entry the first trusted
    proxy wrote: see sapa.ratelimit.client_address)."""
    from sapa.ratelimit import client_address

    return client_address(
        request.headers.get("X-Forwarded-For", ""),
        request.remote_addr,
        c.settings.trusted_proxy_hops,
    )


def read_json(request: flask.Request) -> Any:
    try:
        value = json.loads(request.get_data(cache=True) or b"null")
        # JSON may escape lone surrogates ("\ud800"): not Unicode, and a str that neither
        # SQLite nor the JSON serialisers will take later (a 500 that the sender retries).
        json.dumps(value, ensure_ascii=False).encode()
    except (UnicodeError, json.JSONDecodeError, RecursionError):
        raise PermanentError(text("bad_json")) from None
    return value


def _authorize_task(c: Container, request: flask.Request, function: str | None = None) -> None:
    """Only the queue (or the scheduler) may call a task or job function. In the cloud
    (TASK_SERVICE_ACCOUNT set): a Google-signed OIDC token of that account whose audience is this
    function's own URL; `function` names it (default: FUNCTION_TARGET, which Cloud Functions sets
    to the entry point). Locally: the bearer TASK_TOKEN."""
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
    account = c.settings.task_service_account
    if account:
        from sapa.adapters.cloud.cloud_tasks import verify_task_token

        name = function or os.environ.get("FUNCTION_TARGET", "")
        if not name:
            raise Unauthorized("task endpoint does not know its own name (FUNCTION_TARGET)")
        verify_task_token(
            token,
            audience=c.settings.task_url(name),
            service_account=account,
            certs_url=c.settings.task_oidc_certs_url,
        )
        return
    if not token or not same_secret(token, c.settings.secret("task_token")):
        raise Unauthorized("task token missing or wrong")


authorize_task = _authorize_task  # for scheduled HTTP functions that queues do not call


TaskHandler = Callable[[Container, dict[str, Any], str], Any]


GiveUp = Callable[[Container, dict[str, Any], str], None]


def task_function(fn: TaskHandler | None = None, *, give_up: GiveUp | None = None) -> Any:
    """A queue-triggered function: authenticate the queue, parse the payload, run the handler.

    Cloud Tasks retries every non-2xx, so a permanent error (bad payload, a move the case no
    longer allows) is logged with the task name and answered 200; a transient one is 503.
    `give_up` runs when the last attempt the queue will make fails transiently (the task is
    dead-lettered next): it tells staff and the resident instead of failing in silence."""
    if fn is None:
        return lambda f: _task_wrapper(f, give_up)
    return _task_wrapper(fn, give_up)


def _task_wrapper(fn: TaskHandler, give_up: GiveUp | None) -> Handler:
    @functools.wraps(fn)
    def wrapper(request: flask.Request) -> Any:
        c = container()
        name = request.headers.get("X-CloudTasks-TaskName", "")
        retry = request.headers.get("X-CloudTasks-TaskRetryCount", "0")
        try:
            _authorize_task(c, request, fn.__name__)
        except (Unauthorized, Forbidden, TransientError) as exc:
            log.warning("task refused: %s", exc.message, extra={"kind": fn.__name__})
            return json_response(error_body(exc), status_for(exc))
        payload: Any = None
        try:
            if not name:
                # The task name is the idempotency key of every handler.
                raise PermanentError("X-CloudTasks-TaskName header missing")
            payload = read_json(request)
            if not isinstance(payload, dict) or not payload.get("case_id"):
                raise PermanentError("task payload must be an object with case_id")
            try:
                result = fn(c, payload, name)
            except (KeyError, TypeError) as exc:
                # A payload missing a field or of the wrong shape never heals by retrying.
                raise PermanentError(f"task payload incomplete: {type(exc).__name__}") from exc
        except PermanentError as exc:
            log.error("task dropped: %s", exc.message, extra={"task": name, "kind": fn.__name__})
            return json_response({"status": "permanent_error", **error_body(exc)}, 200)
        except TransientError as exc:
            log.warning(
                "task will retry: %s",
                exc.message,
                extra={"task": name, "kind": fn.__name__, "attempt": retry},
            )
            last = retry.isdigit() and int(retry) + 1 >= c.settings.task_max_attempts
            if give_up is not None and last and isinstance(payload, dict):
                try:
                    give_up(c, payload, exc.message)
                except SapaError:
                    log.exception("give-up handler failed", extra={"task": name})
            return json_response(error_body(exc), 503)
        except Exception:
            log.exception("task failed", extra={"task": name, "kind": fn.__name__})
            return json_response({"error": "internal"}, 500)
        return json_response({"status": "ok", "result": result})

    return wrapper
