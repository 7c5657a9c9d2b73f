"""Fuzz every operation of docs/openapi.yaml against the local server's WSGI app (in process).

Two properties, on any input schemathesis makes from the spec:
- no 5xx (a 503 is allowed only where the spec says a dependency is down, which never
  happens here: the adapters are the embedded ones);
- a 4xx changes nothing: the number of cases, messages, audit events, stored files and
  queued tasks, every case's content, and the officers' version are the same before and after.

To get past the front door, half of the requests carry valid credentials (the task token,
a staff session with its CSRF token, a guest-book token of a real case, a real case id);
the other half are what schemathesis made up. Bodies of the webhook and the signer's
callback are then signed with the right secret, so the fuzzed JSON reaches their parsers.

Examples per operation: SAPA_FUZZ_EXAMPLES (default 15; the whole file runs in about a
minute on two cores).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from sapa.bootstrap import Container
from sapa.dev.localserver import build_app
from tests.conftest import ROOT, RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import Flow

SPEC = ROOT / "docs" / "openapi.yaml"
EXAMPLES = int(os.environ.get("SAPA_FUZZ_EXAMPLES", "15"))


class Target:
    """The app under test and the valid credentials the fuzzer may borrow."""

    def __init__(self, c: Container, flow: Flow) -> None:
        self.c = c
        self.app = build_app(c)
        case = flow.to("link_sent")
        self.case_id = case.id
        self.token = flow.token(case)
        self.task_token = c.settings.secret("task_token")
        client = _wsgi_client(self.app)
        resp = client.post(
            "/staff/login",
            data={"email": "admin@sapa.test"},
            headers={"Accept": "application/json"},
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        self.csrf = resp.get_json()["csrf"]
        cookie = client.get_cookie("sapa_staff")
        assert cookie is not None
        self.session = cookie.value


def _body(response: Any) -> str:
    data = response.get_data() if hasattr(response, "get_data") else response.content
    return bytes(data).decode("utf-8", "replace")


def _wsgi_client(app: Any) -> Any:
    from werkzeug.test import Client

    return Client(app)


@pytest.fixture
def target(container: Container, tmp_path: Path) -> Iterator[Target]:
    container.settings = container.settings.model_copy(  # type: ignore[misc]
        # the limits have their own tests; here they would only hide the handlers
        update={"guestbook_rate_per_minute": 1_000_000, "verify_rate_per_minute": 1_000_000}
    )
    wa = FakeWhatsApp()
    container.whatsapp = wa  # type: ignore[misc]
    queue = container.queue
    assert isinstance(queue, RecordingQueue)
    yield Target(container, Flow(container, wa, queue))


schema = schemathesis.openapi.from_path(str(SPEC))
_alternate = itertools.count()  # every other request borrows valid credentials
SIGNED = {
    ("POST", "/wa/webhook"): ("X-Hub-Signature-256", "wa_app_secret"),
    ("POST", "/esign/callback"): ("X-Sapa-Signature", "esign_callback_secret"),
}


# A refused guest-book submission keeps what the resident typed (the draft) and the
# documents it carried, so a dropped connection or a typo loses nothing (README, guest book);
# nothing else about the case may change.
KEEPS_PROGRESS = {("POST", "/guestbook/f/{token}"): {"draft_form", "documents"}}


def snapshot(c: Container, kept: Collection[str] = ()) -> dict[str, Any]:
    cases = c.store.list_cases(limit=10_000)
    digest = hashlib.sha256()
    events = messages = 0
    for case in sorted(cases, key=lambda k: k.id):
        exclude = {"version", "outbox", *kept}
        digest.update(
            json.dumps(case.model_dump(mode="json", exclude=exclude), sort_keys=True).encode()
        )
        events += len(c.store.events(case.id))
        messages += len(c.store.messages(case.id))
    blobs = c.settings.sapa_data_dir / "blobs"
    queue = c.queue
    assert isinstance(queue, RecordingQueue)
    snap = {
        "cases": len(cases),
        "case_content": digest.hexdigest(),
        "events": events,
        "messages": messages,
        "blobs": sum(1 for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else 0,
        "tasks": len(queue.tasks),
        # officers: a refused change to them (the admin's staff pages) changes nothing either
        "staff": c.store.staff_version(),
    }
    if "documents" in kept:
        del snap["blobs"]
    return snap


def _borrow_credentials(case: Any, target: Target, use: bool) -> dict[str, Any]:
    """With `use`, fill in what a legitimate caller has; returns extra arguments of the call."""
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if not use:
        return {}
    params = case.path_parameters if case.path_parameters is not None else {}
    if "token" in params:
        params["token"] = target.token
    if "case_id" in params:
        params["case_id"] = target.case_id
    path = case.operation.path
    if path.startswith(("/tasks/", "/jobs/")):
        headers["Authorization"] = f"Bearer {target.task_token}"
    if path.startswith(("/staff", "/approval")):
        cookies["sapa_staff"] = target.session
        headers["X-CSRF-Token"] = target.csrf
    return {"headers": headers, "cookies": cookies}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_rejected_input_changes_nothing(case: Any, target: Target) -> None:
    use = next(_alternate) % 2 == 0
    extra = _borrow_credentials(case, target, use)
    kept = KEEPS_PROGRESS.get((case.method.upper(), case.operation.path), set())
    before = snapshot(target.c, kept)
    signed = SIGNED.get((case.method.upper(), case.operation.path))
    if use and signed is not None and isinstance(case.body, dict | list | str | int | float):
        # a correctly signed body, so the fuzzed JSON reaches the parser behind the signature
        header, secret = signed
        raw = json.dumps(case.body).encode()
        mac = hmac.new(target.c.settings.secret(secret).encode(), raw, hashlib.sha256)
        response = _wsgi_client(target.app).post(
            case.formatted_path,
            data=raw,
            headers={"Content-Type": "application/json", header: "sha256=" + mac.hexdigest()},
        )
    else:
        response = case.call(app=target.app, **extra)
    status = response.status_code
    if os.environ.get("SAPA_FUZZ_DEBUG"):
        print("FUZZ", case.method, case.operation.path, use, status)
    assert status < 500, (
        f"{case.method} {case.formatted_path} answered {status}: {_body(response)[:500]}"
    )
    if 400 <= status < 500 and status != 429:
        after = snapshot(target.c, kept)
        assert after == before, (
            f"{case.method} {case.formatted_path} answered {status} but changed the store: "
            f"{before} -> {after}"
        )
