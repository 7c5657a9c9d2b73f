"""The Cloud Tasks TaskQueue: what it asks Cloud Tasks for, and delivery through the emulator.

Two halves:
- Our own code, against a recording stand-in for the Cloud Tasks client (the CreateTaskRequest
  is inspected as it would go over the wire): queue per kind, target URL, JSON body, OIDC token
  fields, deterministic and sanitised task names, AlreadyExists → False, error mapping. The
  emulator cannot check these: it does not deduplicate names, back off, or send OIDC tokens.
- The real Cloud Tasks emulator (PyPI gcloud-tasks-emulator, in its own venv: see
  cloud_tasks_emulator.py) over gRPC, delivering HTTP tasks to a recording server and to the
  real functions of `sapa.dev.localserver`: body, headers, schedule_time, and a case that really
  moves. These skip with the reason when the emulator cannot be installed or started.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydantic
import pytest
import requests
from google.api_core import exceptions as gx
from hypothesis import given
from hypothesis import strategies as st

from sapa.adapters.cloud.cloud_tasks import CloudTasksQueue, load_queue_config, queue_id, task_id
from sapa.adapters.meta_webhook import sign_body
from sapa.bootstrap import Container
from sapa.dev import localserver
from sapa.domain.errors import PermanentError, TransientError
from sapa.ports import Task
from sapa.settings import Settings, load_settings
from tests.contract.cloud_tasks_emulator import TasksEmulator, free_port

PROJECT = "sapa-test"
LOCATION = "asia-southeast2"
SA = "sapa-tasks@sapa-test.iam.gserviceaccount.com"
TEMPLATE = "https://asia-southeast2-sapa-test.cloudfunctions.net/sapa-{name}"
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")


def url_for(kind: str) -> str:
    return TEMPLATE.format(name=kind.replace("_", "-"))


@dataclass
class RecordingClient:
    """Stands in for `tasks_v2.CloudTasksClient` where a test must see the request or make
    Cloud Tasks fail: keeps every CreateTaskRequest, answers AlreadyExists for a name it has
    seen (as Cloud Tasks does), and raises `fail` when set."""

    requests: list[Any] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    fail: BaseException | None = None

    def create_task(self, *, request: Any, timeout: float | None = None) -> Any:
        if self.fail is not None:
            raise self.fail
        if request.task.name:
            if request.task.name in self.names:
                raise gx.AlreadyExists(f"Requested entity already exists: {request.task.name}")
            self.names.add(request.task.name)
        self.requests.append(request)
        return request.task


@pytest.fixture
def recording() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def queue(recording: RecordingClient) -> CloudTasksQueue:
    return CloudTasksQueue(
        project=PROJECT, location=LOCATION, url_for=url_for, service_account=SA, client=recording
    )


# ---- the request ------------------------------------------------------------------------------


def test_a_task_is_a_post_of_its_json_to_its_function_with_an_oidc_token(
    queue: CloudTasksQueue, recording: RecordingClient
) -> None:
    at = datetime(2026, 11, 29, 9, 30, 15, 250000, tzinfo=UTC)
    payload = {"case_id": "c-1", "kind": "guestbook_link", "note": "Désa Sungguminasa"}
    # WHEN a named, scheduled media task is enqueued
    assert queue.enqueue(Task("media_store", payload, name="media_store-abc123", schedule_at=at))
    (req,) = recording.requests
    # THEN it goes to the kind's own queue, under its own name
    parent = f"projects/{PROJECT}/locations/{LOCATION}/queues/sapa-media-store"
    assert req.parent == parent
    assert req.task.name == f"{parent}/tasks/media_store-abc123"
    # AND it is a POST of the JSON payload to the media_store function
    http = req.task.http_request
    assert http.url == "https://asia-southeast2-sapa-test.cloudfunctions.net/sapa-media-store"
    assert http.http_method.name == "POST"
    assert json.loads(http.body) == payload
    assert dict(http.headers) == {"Content-Type": "application/json"}
    # AND with an OIDC token of the task service account for that very URL (no static secret)
    assert http.oidc_token.service_account_email == SA
    assert http.oidc_token.audience == http.url
    assert not http.oauth_token.service_account_email
    # AND at its schedule time, with the queue's dispatch deadline
    assert req.task.schedule_time == at
    assert req.task.dispatch_deadline == timedelta(
        seconds=load_queue_config()["media_store"]["timeout_seconds"]
    )


def test_an_unnamed_unscheduled_task_leaves_both_to_cloud_tasks(
    queue: CloudTasksQueue, recording: RecordingClient
) -> None:
    assert queue.enqueue(Task("notify", {"case_id": "c-1"}))
    assert queue.enqueue(Task("notify", {"case_id": "c-1"}))  # no name: never deduped
    first, second = recording.requests
    assert first.task.name == "" and second.task.name == ""
    assert "schedule_time" not in first.task  # proto-plus: the field is unset


def test_every_task_kind_has_its_queue_with_the_names_terraform_uses() -> None:
    config = load_queue_config()
    assert set(localserver.TASK_KINDS) <= set(config)
    assert queue_id("sapa-", "esign_request") == "sapa-esign-request"
    for kind, cfg in config.items():
        assert re.fullmatch(r"sapa-[a-z-]+", queue_id("sapa-", kind))
        assert cfg["min_backoff_seconds"] <= cfg["max_backoff_seconds"]
        assert cfg["max_attempts"] >= 1 and cfg["timeout_seconds"] >= 15


# ---- names ------------------------------------------------------------------------------------


def test_a_name_enqueued_twice_is_deduped(
    queue: CloudTasksQueue, recording: RecordingClient
) -> None:
    task = Task("notify", {"case_id": "c-1"}, name="notify-0123456789abcdef")
    assert queue.enqueue(task) is True
    # WHEN the same task is enqueued again (a retry, the outbox sweep)
    again = queue.enqueue(Task("notify", {"case_id": "c-1"}, name="notify-0123456789abcdef"))
    # THEN Cloud Tasks' AlreadyExists means "already queued": False, and one task exists
    assert again is False
    assert len(recording.requests) == 1


@pytest.mark.parametrize(
    "name",
    [
        "wamid.HBgLNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBCNkE2QjEwQ0Y0",
        "case:c-1/step 6",
        "nama-dengan-ü",
        "x" * 501,
        "../../etc",
        ".",
    ],
    ids=["wamid", "slash-space", "non-ascii", "too-long", "dots", "dot"],
)
def test_odd_names_become_valid_ids_and_still_dedupe(
    queue: CloudTasksQueue, recording: RecordingClient, name: str
) -> None:
    assert queue.enqueue(Task("notify", {"case_id": "c-1"}, name=name)) is True
    assert queue.enqueue(Task("notify", {"case_id": "c-1"}, name=name)) is False
    (req,) = recording.requests
    tid = req.task.name.rsplit("/", 1)[1]
    assert TASK_ID.fullmatch(tid)
    assert tid == task_id(name)


def test_valid_names_are_kept_as_they_are() -> None:
    # (the handler sees it in X-CloudTasks-TaskName: readable in logs, the same everywhere)
    for name in ("notify-0123abcd", "a", "A_b-9", "x" * 500):
        assert task_id(name) == name


@given(st.text(max_size=600))
def test_task_ids_are_valid_and_deterministic(name: str) -> None:
    tid = task_id(name)
    assert TASK_ID.fullmatch(tid)
    assert task_id(name) == tid


@given(st.text(max_size=80), st.text(max_size=80))
def test_different_names_get_different_ids(a: str, b: str) -> None:
    if a != b:
        assert task_id(a) != task_id(b)


def test_names_that_differ_only_in_replaced_characters_differ() -> None:
    assert task_id("case c-1") != task_id("case/c-1") != task_id("case-c-1")
    assert task_id("x" * 501) != task_id("x" * 502)


# ---- bad tasks and failures -------------------------------------------------------------------


def test_bad_tasks_are_refused_before_any_call(
    queue: CloudTasksQueue, recording: RecordingClient
) -> None:
    with pytest.raises(ValueError, match="no Cloud Tasks queue"):
        queue.enqueue(Task("unknown_kind", {"case_id": "c-1"}))
    with pytest.raises(ValueError, match="timezone-aware"):
        queue.enqueue(Task("notify", {"case_id": "c-1"}, schedule_at=datetime(2026, 1, 1)))
    with pytest.raises(TypeError):
        queue.enqueue(Task("notify", ["not", "a", "dict"]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.enqueue(Task("notify", {"case_id": object()}))
    assert recording.requests == []


@pytest.mark.parametrize(
    "error",
    [
        gx.ServiceUnavailable("unavailable"),
        gx.DeadlineExceeded("deadline"),
        gx.InternalServerError("internal"),
        gx.ResourceExhausted("quota"),
        gx.Unknown("unknown"),
        gx.NotFound("queue does not exist"),
        gx.PermissionDenied("no cloudtasks.tasks.create"),
        gx.FailedPrecondition("queue paused"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_and_deployment_faults_are_transient(
    queue: CloudTasksQueue, recording: RecordingClient, error: BaseException
) -> None:
    # (the services keep such a task in the case's outbox and queue it later)
    recording.fail = error
    with pytest.raises(TransientError):
        queue.enqueue(Task("notify", {"case_id": "c-1"}, name="n-1"))


def test_a_task_cloud_tasks_rejects_is_permanent(
    queue: CloudTasksQueue, recording: RecordingClient
) -> None:
    recording.fail = gx.InvalidArgument("Task size too large")
    with pytest.raises(PermanentError):
        queue.enqueue(Task("notify", {"case_id": "c-1"}, name="n-1"))


def test_a_queue_needs_a_service_account_or_the_emulators_bearer() -> None:
    with pytest.raises(PermanentError):
        CloudTasksQueue(
            project=PROJECT, location=LOCATION, url_for=url_for, client=RecordingClient()
        )
    with pytest.raises(ValueError, match="queue id"):
        CloudTasksQueue(
            project=PROJECT,
            location=LOCATION,
            url_for=url_for,
            service_account=SA,
            prefix="sapa_",
            client=RecordingClient(),
        )


# ---- settings ---------------------------------------------------------------------------------

CLOUD = {
    "sapa_env": "cloud",
    "dev_login": False,
    "iap_audience": "/projects/1/global/backendServices/2",
    "wa_token": "t",
    "wa_app_secret": "s",
    "wa_verify_token": "v",
    "link_secret": "l",
    "session_secret": "x",
    "esign_callback_secret": "e",
    "gcp_project": PROJECT,
    "queue": "cloudtasks",
}


def test_cloud_settings_with_cloud_tasks_need_the_url_template_and_the_service_account() -> None:
    with pytest.raises(pydantic.ValidationError, match="TASK_URL_TEMPLATE, TASK_SERVICE_ACCOUNT"):
        Settings(**CLOUD)
    with pytest.raises(pydantic.ValidationError, match="TASK_SERVICE_ACCOUNT"):
        Settings(**CLOUD, task_url_template=TEMPLATE)
    # AND with both, no TASK_TOKEN is needed: the OIDC token replaces it
    s = Settings(**CLOUD, task_url_template=TEMPLATE, task_service_account=SA)
    assert s.task_token is None
    assert s.task_url("media_store") == url_for("media_store")
    assert s.task_url("sla_sweep").endswith("/sapa-sla-sweep")
    # AND without Cloud Tasks the task token is still demanded in the cloud
    with pytest.raises(pydantic.ValidationError, match="TASK_TOKEN"):
        Settings(**{**CLOUD, "queue": "sqlite"})


def test_settings_refuse_a_bad_template_and_the_emulator_in_the_cloud() -> None:
    ok = {**CLOUD, "task_service_account": SA}
    for bad in ("https://x.example/sapa", "https://x.example/{function}", "https://{name"):
        with pytest.raises(pydantic.ValidationError, match=r"\{name\}"):
            Settings(**ok, task_url_template=bad)
    with pytest.raises(pydantic.ValidationError, match="TASKS_EMULATOR_HOST"):
        Settings(**ok, task_url_template=TEMPLATE, tasks_emulator_host="127.0.0.1:9")
    with pytest.raises(pydantic.ValidationError, match="TASK_URL_TEMPLATE"):
        Settings(task_service_account=SA)  # locally too: the audience comes from it


def test_against_the_emulator_tasks_go_to_this_servers_endpoints_by_default() -> None:
    # GIVEN QUEUE=cloudtasks on the emulator without TASK_URL_TEMPLATE (`make run`)
    s = Settings(
        queue="cloudtasks",
        gcp_project=PROJECT,
        tasks_emulator_host="127.0.0.1:9",
        public_base_url="http://127.0.0.1:8123/",
    )
    # THEN each kind goes where the embedded worker would deliver it: this server's endpoint
    assert s.task_url("media_store") == "http://127.0.0.1:8123/tasks/media_store"
    elsewhere = Settings(**{**s.model_dump(), "task_target_base": "http://10.0.0.2:9"})
    assert elsewhere.task_url("notify") == "http://10.0.0.2:9/tasks/notify"
    # AND a template, where given, still wins
    templated = Settings(**{**s.model_dump(), "task_url_template": TEMPLATE})
    assert templated.task_url("media_store") == url_for("media_store")
    # AND without the emulator the template is still demanded
    with pytest.raises(pydantic.ValidationError, match="TASK_URL_TEMPLATE"):
        Settings(queue="cloudtasks", gcp_project=PROJECT)


def test_the_container_builds_the_cloud_tasks_queue_without_connecting(tmp_path: Path) -> None:
    # an emulator address where nothing listens: building the queue must not touch it
    c = Container(
        load_settings(
            sapa_data_dir=tmp_path,
            queue="cloudtasks",
            gcp_project=PROJECT,
            task_url_template="http://127.0.0.1:9/tasks/{kind}",
            tasks_emulator_host=f"127.0.0.1:{free_port()}",
        )
    )
    q = c.queue
    assert isinstance(q, CloudTasksQueue)
    assert q.queue_path("notify").endswith("/queues/sapa-notify")
    # without a service account (emulator only) the local task token rides along instead
    req = q.build_request(Task("notify", {"case_id": "c"}))
    assert req.task.http_request.headers["Authorization"] == f"Bearer {c.settings.task_token}"
    assert not req.task.http_request.oidc_token.service_account_email


def test_importing_the_adapter_loads_no_client_library() -> None:
    code = (
        "import sys\n"
        "import sapa.adapters.cloud.cloud_tasks\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'grpc'"
        " or m.startswith(('google.cloud.', 'google.api_core', 'google.auth', 'google.oauth2',"
        " 'google.protobuf')))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the emulator -----------------------------------------------------------------------------


@pytest.fixture
def emulator(tasks_emulator: TasksEmulator) -> TasksEmulator:
    """The session's emulator (tests/contract/cloud_tasks_emulator.py)."""
    return tasks_emulator


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Recorder:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.deliveries)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """An HTTP endpoint on 127.0.0.1 that records every POST and answers 200."""
    rec = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.deliveries.append(Delivery(self.path, dict(self.headers), body, time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def emulator_queue(emulator: TasksEmulator, url_for: Callable[[str], str]) -> CloudTasksQueue:
    q = CloudTasksQueue(
        project=f"sapa-{uuid.uuid4().hex[:12]}",  # queues of their own on the shared emulator
        location=LOCATION,
        url_for=url_for,
        bearer_token="emulator-bearer",
        emulator_host=emulator.host,
    )
    q.ensure_queues()
    return q


@pytest.mark.integration
def test_the_emulator_delivers_the_json_body_to_the_kinds_url(
    emulator: TasksEmulator, recorder: Recorder
) -> None:
    q = emulator_queue(emulator, lambda kind: f"{recorder.url}/tasks/{kind}")
    payload = {"case_id": "c-1", "text": "Permohonan KTP-el — Désa Bontoramba", "n": [1, 2]}
    # WHEN a named task is enqueued through the adapter
    assert q.enqueue(Task("media_store", payload, name="media_store-0123abcd")) is True
    # THEN the emulator POSTs it to the media_store endpoint with the JSON body and the headers
    (got,) = recorder.wait_for(1)
    assert got.path == "/tasks/media_store"
    assert json.loads(got.body) == payload
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-cloudtasks-taskname"] == "media_store-0123abcd"
    assert headers["x-cloudtasks-queuename"].endswith("/queues/sapa-media-store")
    assert headers["authorization"] == "Bearer emulator-bearer"


@pytest.mark.integration
def test_the_emulator_honours_schedule_time(emulator: TasksEmulator, recorder: Recorder) -> None:
    q = emulator_queue(emulator, lambda kind: f"{recorder.url}/tasks/{kind}")
    # GIVEN a task scheduled 3 seconds ahead, then one for now
    later = datetime.now(UTC) + timedelta(seconds=3)
    assert q.enqueue(Task("notify", {"case_id": "later"}, name="later", schedule_at=later))
    assert q.enqueue(Task("notify", {"case_id": "now"}, name="now"))
    # THEN the one for now arrives first, and the scheduled one not before its time
    first, second = recorder.wait_for(2)
    assert json.loads(first.body) == {"case_id": "now"}
    assert json.loads(second.body) == {"case_id": "later"}
    assert second.at >= later.timestamp()
    assert first.at < later.timestamp()


@pytest.fixture
def stack_on_emulator(emulator: TasksEmulator, tmp_path: Path) -> Iterator[localserver.LocalStack]:
    """The whole local server (every function, the WhatsApp simulator) with QUEUE=cloudtasks on
    the emulator instead of the embedded queue and its worker, as `make run` starts it: on a
    port of its own choosing, with no TASK_URL_TEMPLATE (the tasks come to its own endpoints)
    and no queues made beforehand (the server makes them on the emulator)."""
    settings = load_settings(
        sapa_data_dir=tmp_path / "var",
        queue="cloudtasks",
        gcp_project=f"sapa-{uuid.uuid4().hex[:12]}",
        tasks_emulator_host=emulator.host,
    )
    stack = localserver.LocalStack(settings)
    stack.start()
    try:
        assert stack.worker is None  # the emulator delivers, nothing local does
        yield stack
    finally:
        stack.stop()


@pytest.mark.integration
def test_a_greeting_is_answered_through_cloud_tasks(
    stack_on_emulator: localserver.LocalStack,
) -> None:
    stack = stack_on_emulator
    c = stack.c
    wa_id = "6281234567890"
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "waba",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "62411000008",
                                "phone_number_id": "demo-730608",
                            },
                            "contacts": [{"profile": {"name": "Andi"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": "wamid.cloudtasks.1",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": "Assalamualaikum"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    # WHEN a resident greets Somba Opu's number
    resp = requests.post(
        f"{stack.base_url}/wa/webhook",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(c.settings.secret("wa_app_secret"), raw),
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    case = c.store.find_open("730608", wa_id)
    assert case is not None

    # THEN the notify task goes through Cloud Tasks (the emulator) to the notify function,
    # which sends the guest-book link and moves the case on
    def link_sent() -> list[str]:
        if c.store.get(case.id).state != "link_sent":
            return []
        return [m.body for m in c.store.messages(case.id) if m.direction == "out"]

    deadline = time.monotonic() + 30
    while not link_sent() and time.monotonic() < deadline:
        time.sleep(0.1)
    sent = link_sent()
    assert sent and "/guestbook/f/" in sent[0], (c.store.get(case.id).state, sent)
    assert c.store.get(case.id).outbox == []
