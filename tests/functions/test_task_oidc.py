"""Task and job functions in the cloud: only a Google-signed OIDC ID token of the task service
account, meant for the function's own URL, opens them (Cloud Tasks and Cloud Scheduler send one).

Google's keys are played by an RSA key generated here, served as Google serves them at
https://www.googleapis.com/oauth2/v1/certs ({kid: PEM certificate}, Cache-Control max-age) from a
server on 127.0.0.1; tokens are signed with google-auth's own RS256 signer."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import jwt
from google.auth.crypt import RSASigner

from sapa.adapters.clock import FixedClock
from sapa.adapters.cloud import cloud_tasks
from sapa.bootstrap import Container
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import Flow, snapshot
from tests.key_server import KeyServer, pem_private, serving_keys

SA = "sapa-tasks@sapa-test.iam.gserviceaccount.com"
TEMPLATE = "https://asia-southeast2-sapa-test.cloudfunctions.net/sapa-{name}"
NOTIFY_URL = "https://asia-southeast2-sapa-test.cloudfunctions.net/sapa-notify"
SLA_URL = "https://asia-southeast2-sapa-test.cloudfunctions.net/sapa-sla-sweep"
ISSUER = "https://accounts.google.com"
KID = "google-test-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_certificate(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate of the key, the form Google's v1 certs endpoint uses."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test.googleapis.invalid")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=14))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


GOOGLE_KEY = new_key()
OTHER_KEY = new_key()


@pytest.fixture(scope="module")
def cert_server() -> Iterator[KeyServer]:
    cache = {"Cache-Control": "public, max-age=21600, must-revalidate"}
    with serving_keys({KID: pem_certificate(GOOGLE_KEY)}, "/oauth2/v1/certs", cache) as served:
        yield served


@pytest.fixture
def oidc(container: Container, cert_server: KeyServer) -> Iterator[KeyServer]:
    """The container configured as in the cloud: tasks come from Cloud Tasks with OIDC."""
    container.settings = container.settings.model_copy(
        update={
            "task_service_account": SA,
            "task_url_template": TEMPLATE,
            "task_oidc_certs_url": cert_server.url,
        }
    )
    cert_server.keys = {KID: pem_certificate(GOOGLE_KEY)}
    cert_server.hits.clear()
    cloud_tasks.CERTS.clear()
    yield cert_server
    cloud_tasks.CERTS.clear()


def id_token(
    *,
    key: rsa.RSAPrivateKey = GOOGLE_KEY,
    kid: str | None = KID,
    aud: str = NOTIFY_URL,
    iss: str = ISSUER,
    email: str = SA,
    email_verified: Any = True,
    iat: float | None = None,
    exp: float | None = None,
) -> str:
    """An ID token as Google mints it for Cloud Tasks' oidc_token."""
    now = int(time.time())
    claims = {
        "aud": aud,
        "azp": "112233445566778899000",
        "email": email,
        "email_verified": email_verified,
        "iat": int(iat if iat is not None else now - 5),
        "exp": int(exp if exp is not None else now + 3600),
        "iss": iss,
        "sub": "112233445566778899000",
    }
    signer = RSASigner.from_string(pem_private(key), key_id=kid)
    return jwt.encode(signer, claims).decode()


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def deliver(
    client_for: Callable[[str], Any], kind: str, payload: Any, name: str, auth: str | None
) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-CloudTasks-QueueName": f"sapa-{kind.replace('_', '-')}",
        "X-CloudTasks-TaskName": name,
        "X-CloudTasks-TaskRetryCount": "0",
    }
    if auth is not None:
        headers["Authorization"] = auth
    return client_for(kind).post("/", data=json.dumps(payload).encode(), headers=headers)


def link_task(flow: Flow) -> Any:
    (task,) = [t for t in flow.queue.tasks if t.kind == "notify"]
    return task


# ---- a genuine token --------------------------------------------------------------------------


def test_a_genuine_token_for_the_functions_own_url_runs_the_task(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
) -> None:
    # GIVEN a greeted case whose guest-book link task is queued
    case = flow.greet()
    task = link_task(flow)
    # WHEN Cloud Tasks delivers it with Google's ID token of the task service account
    resp = deliver(client_for, "notify", task.payload, task.name, f"Bearer {id_token()}")
    # THEN the task ran: the link went out and the case moved on
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "ok"
    assert container.store.get(case.id).state == "link_sent"
    assert len(wa.sent) == 1
    # AND Google's keys were fetched from the configured URL to check it
    assert oidc.hits == ["/oauth2/v1/certs"]


def test_a_warm_instance_fetches_googles_keys_once(
    container: Container,
    flow: Flow,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
) -> None:
    # GIVEN several cases with their link tasks
    tasks = []
    for i in range(3):
        flow.greet(wa_id=f"62812000000{i:02d}")
        tasks.append(flow.queue.tasks[-1])
    # WHEN the tasks arrive one after the other
    for task in tasks:
        resp = deliver(client_for, "notify", task.payload, task.name, f"Bearer {id_token()}")
        assert resp.status_code == 200, resp.get_json()
    # THEN the keys were fetched for the first one only (kept for the answer's max-age)
    assert oidc.hits == ["/oauth2/v1/certs"]


def test_a_key_google_rotated_in_is_fetched_once_more(
    container: Container,
    flow: Flow,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the keys were fetched for a first task
    first = flow.greet()
    task = link_task(flow)
    resp = deliver(client_for, "notify", task.payload, task.name, f"Bearer {id_token()}")
    assert resp.status_code == 200, resp.get_json()
    # WHEN Google signs with a new key (published since) and the kept keys are old enough
    monkeypatch.setattr(cloud_tasks, "_MIN_REFETCH_SECONDS", 0.0)
    new = new_key()
    oidc.keys = {KID: pem_certificate(GOOGLE_KEY), "google-test-key-2": pem_certificate(new)}
    flow.greet(wa_id="6281299990000")
    second = flow.queue.tasks[-1]
    token = id_token(key=new, kid="google-test-key-2")
    resp = deliver(client_for, "notify", second.payload, second.name, f"Bearer {token}")
    # THEN the keys are fetched again and the task runs
    assert resp.status_code == 200, resp.get_json()
    assert len(oidc.hits) == 2
    assert container.store.get(first.id).state == "link_sent"


# ---- anything else: refused, nothing done -----------------------------------------------------

NOW = time.time()
# kind → (the Authorization header, the expected status)
BAD: dict[str, Callable[[], tuple[str | None, int]]] = {
    "missing": lambda: (None, 401),
    "empty_bearer": lambda: ("Bearer ", 401),
    "basic_scheme": lambda: (f"Basic {id_token()}", 401),
    "wrong_audience_other_function": lambda: (
        f"Bearer {id_token(aud=TEMPLATE.format(name='deliver'))}",
        401,
    ),
    "wrong_audience_other_project": lambda: (
        f"Bearer {id_token(aud=NOTIFY_URL.replace('sapa-test', 'someone-else'))}",
        401,
    ),
    "wrong_issuer": lambda: (f"Bearer {id_token(iss='https://evil.example.com')}", 401),
    "wrong_email": lambda: (
        f"Bearer {id_token(email='someone@other-project.iam.gserviceaccount.com')}",
        403,
    ),
    "email_not_verified": lambda: (f"Bearer {id_token(email_verified=False)}", 403),
    "email_verified_as_text": lambda: (f"Bearer {id_token(email_verified='false')}", 403),
    "expired": lambda: (f"Bearer {id_token(iat=NOW - 7200, exp=NOW - 3600)}", 401),
    "not_yet_valid": lambda: (f"Bearer {id_token(iat=NOW + 3600, exp=NOW + 7200)}", 401),
    "other_key_same_kid": lambda: (f"Bearer {id_token(key=OTHER_KEY)}", 401),
    "other_key_unknown_kid": lambda: (f"Bearer {id_token(key=OTHER_KEY, kid='nope')}", 401),
    "unsigned_alg_none": lambda: (
        "Bearer "
        + b64({"alg": "none", "kid": KID})
        + "."
        + b64(
            {
                "iss": ISSUER,
                "aud": NOTIFY_URL,
                "email": SA,
                "email_verified": True,
                "iat": int(NOW),
                "exp": int(NOW) + 600,
            }
        )
        + ".",
        401,
    ),
    "signature_stripped": lambda: (f"Bearer {id_token().rsplit('.', 1)[0]}.", 401),
    "payload_swapped": lambda: (
        "Bearer "
        + ".".join(
            [
                id_token(email="x@y.iam.gserviceaccount.com").split(".")[0],
                b64(
                    {
                        "iss": ISSUER,
                        "aud": NOTIFY_URL,
                        "email": SA,
                        "email_verified": True,
                        "iat": int(NOW),
                        "exp": int(NOW) + 600,
                    }
                ),
                id_token(email="x@y.iam.gserviceaccount.com").split(".")[2],
            ]
        ),
        401,
    ),
    "garbage": lambda: ("Bearer not-a-jwt", 401),
    "garbage_segments": lambda: ("Bearer a.b.c", 401),
    "json_array_header": lambda: ("Bearer W10.e30.AAAA", 401),
    "non_ascii": lambda: ("Bearer t\u00f6ken", 401),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_anything_but_a_genuine_token_is_refused_and_changes_nothing(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
    kind: str,
) -> None:
    # GIVEN a greeted case whose link task is queued
    case = flow.greet()
    task = link_task(flow)
    before = snapshot(container, case.id)
    auth, status = BAD[kind]()
    # WHEN the task arrives with a bad token (or none)
    resp = deliver(client_for, "notify", task.payload, task.name, auth)
    # THEN it is refused (401 not genuine, 403 genuine but another account) and nothing happened
    assert resp.status_code == status, (kind, resp.get_json())
    assert resp.get_json()["error"] == ("unauthorized" if status == 401 else "forbidden")
    assert wa.sent == []
    assert snapshot(container, case.id) == before


def test_the_local_task_token_opens_nothing_in_the_cloud(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
) -> None:
    case = flow.greet()
    task = link_task(flow)
    before = snapshot(container, case.id)
    bearer = f"Bearer {container.settings.secret('task_token')}"
    resp = deliver(client_for, "notify", task.payload, task.name, bearer)
    assert resp.status_code == 401
    assert wa.sent == []
    assert snapshot(container, case.id) == before


def test_keys_that_cannot_be_fetched_are_a_503_so_the_queue_retries(
    container: Container,
    flow: Flow,
    wa: FakeWhatsApp,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
) -> None:
    # GIVEN Google's key endpoint is unreachable (nothing listens on that port)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/oauth2/v1/certs"
    container.settings = container.settings.model_copy(update={"task_oidc_certs_url": dead})
    case = flow.greet()
    task = link_task(flow)
    before = snapshot(container, case.id)
    # WHEN a genuine task arrives
    resp = deliver(client_for, "notify", task.payload, task.name, f"Bearer {id_token()}")
    # THEN it is not run, and answered 503: Cloud Tasks retries it later
    assert resp.status_code == 503, resp.get_json()
    assert wa.sent == []
    assert snapshot(container, case.id) == before


# ---- the scheduled jobs (Cloud Scheduler, same service account) -------------------------------


@pytest.mark.parametrize("job", ["sla_sweep", "retention_sweep"])
def test_scheduled_jobs_take_a_token_for_their_own_url(
    container: Container,
    flow: Flow,
    clock: FixedClock,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
    job: str,
) -> None:
    # GIVEN the job deployed as its own function (Cloud Functions sets FUNCTION_TARGET)
    monkeypatch.setenv("FUNCTION_TARGET", job)
    own_url = TEMPLATE.format(name=job.replace("_", "-"))
    case = flow.to("form_submitted")
    clock.advance(25 * 3600)  # a check nobody took for a day: the SLA sweep records it
    before = snapshot(container, case.id)
    # WHEN it is called with a token meant for another function, or with the local token
    for auth in (
        f"Bearer {id_token(aud=NOTIFY_URL)}",
        f"Bearer {container.settings.secret('task_token')}",
        None,
    ):
        headers = {} if auth is None else {"Authorization": auth}
        resp = client_for(job).post("/", headers=headers)
        # THEN it is refused and nothing was recorded
        assert resp.status_code == 401, (auth, resp.get_json())
        assert snapshot(container, case.id) == before
    # WHEN Cloud Scheduler calls it with a token for its own URL
    resp = client_for(job).post("/", headers={"Authorization": f"Bearer {id_token(aud=own_url)}"})
    # THEN it runs
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "ok"
    if job == "sla_sweep":
        assert resp.get_json()["breaches"] == 1
        assert "sla_breach" in [e.event for e in container.store.events(case.id)]


def test_a_job_that_does_not_know_its_name_refuses(
    container: Container,
    oidc: KeyServer,
    client_for: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FUNCTION_TARGET", raising=False)
    resp = client_for("sla_sweep").post(
        "/", headers={"Authorization": f"Bearer {id_token(aud=SLA_URL)}"}
    )
    assert resp.status_code == 401
