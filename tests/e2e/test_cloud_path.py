"""End to end on the cloud adapters: the whole SOP over HTTP with STORE=firestore,
QUEUE=cloudtasks and BLOBS=gcs (then BLOBS=s3), against the real emulators, and nothing kept in
the embedded stores.

The stack is the local server (`LocalStack`: every function, the WhatsApp simulator, the local
signer) with the cloud adapters chosen by settings, as `make run` starts it with them (README:
*Running on the cloud adapters locally*). Cases live in Google's Firestore emulator, files in
fake-gcs-server or moto's S3 server, and every task goes through the Cloud Tasks emulator, which
POSTs it over HTTP to the server's task endpoints: no local worker runs. The walk is the demo's
(`sapa.dev.demo.run`): a resident greets on WhatsApp, gets the guest-book link, sends the guest
book with a photo and a PDF, each officer claims and does their step, the head of office signs,
and the signed PDF reaches the resident on WhatsApp.

The emulators are the session fixtures of tests/contract (one process each per run); these
tests skip with the reason where one cannot start, and fail instead where
SAPA_REQUIRE_EMULATORS=1 (CI).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from sapa.adapters.cloud.cloud_tasks import CloudTasksQueue
from sapa.adapters.cloud.firestore_store import FirestoreCaseStore
from sapa.adapters.cloud.gcs_blobs import GcsBlobStore
from sapa.adapters.cloud.s3_blobs import S3BlobStore
from sapa.adapters.embedded.data_lock import LOCK_FILE
from sapa.adapters.pdf import verify_signature
from sapa.dev import demo
from sapa.dev.driver import Office, Officer
from sapa.dev.localserver import LocalStack
from sapa.domain.rollup import ALL, SURVEY
from sapa.settings import load_settings
from tests.contract.blob_servers import FakeGcsServer
from tests.contract.cloud_tasks_emulator import TasksEmulator
from tests.contract.firestore_emulator import FirestoreEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# What a local server on the cloud adapters may keep under its data directory, and nothing
# else: its lock on the directory (`sapa.lock`: who runs on it), the development secrets it
# generates (`secrets.json`: in the cloud they come from Secret Manager), the WhatsApp
# simulator's conversations (it plays Meta, not SAPA), and the local signer's development CA,
# certificate and keys (`signer/`: it plays BSrE). No case store (sapa.db), no task queue
# (tasks.db), no files (blobs/).
ALLOWED = (
    re.compile(re.escape(LOCK_FILE)),
    re.compile(r"secrets\.json"),
    re.compile(r"wa_simulator\.db(-wal|-shm|-journal)?"),
    re.compile(r"signer/.+"),
)
EMBEDDED_STORES = ("sapa.db", "tasks.db", "blobs")

# The task kinds a case's walk from greeting to delivery sets off.
WALK_TASKS = {"notify", "precheck", "siak_handoff", "esign_request", "deliver"}


@dataclass
class Bucket:
    """Where BLOBS=gcs or BLOBS=s3 keeps the files of one test: its settings and its keys."""

    kind: str
    settings: dict[str, str]
    keys: Callable[[], set[str]]


def _gcs_bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    server: FakeGcsServer = request.getfixturevalue("fake_gcs_server")
    # The adapter builds its own client, as in the cloud; the library finds the emulator here
    # (and then signs no URLs: the hand-off package is served through the function).
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)
    name = f"sapa-e2e-{uuid.uuid4().hex[:12]}"
    client = server.client()
    client.create_bucket(name)
    return Bucket("gcs", {"gcs_bucket": name}, lambda: {b.name for b in client.list_blobs(name)})


def _s3_bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    import boto3

    endpoint: str = request.getfixturevalue("moto_s3_endpoint")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = f"sapa-e2e-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)

    def keys() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
        return {o["Key"] for page in pages for o in page.get("Contents", ())}

    return Bucket(
        "s3",
        {"s3_bucket": name, "s3_endpoint_url": endpoint, "s3_region": "us-east-1"},
        keys,
    )


@pytest.fixture(params=[pytest.param(_gcs_bucket, id="gcs"), pytest.param(_s3_bucket, id="s3")])
def bucket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    make: Callable[[pytest.FixtureRequest, pytest.MonkeyPatch], Bucket] = request.param
    return make(request, monkeypatch)


@pytest.fixture
def cloud_stack(
    tmp_path: Path,
    bucket: Bucket,
    firestore_emulator: FirestoreEmulator,
    tasks_emulator: TasksEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LocalStack]:
    """The local server on Firestore, Cloud Tasks and the bucket, on a random port; a project
    of its own (its documents and queues apart from any other test's)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    settings = load_settings(
        sapa_data_dir=tmp_path / "var",
        store="firestore",
        blobs=bucket.kind,
        queue="cloudtasks",
        gcp_project=f"sapa-e2e-{uuid.uuid4().hex[:12]}",
        tasks_emulator_host=tasks_emulator.host,
        **bucket.settings,
    )
    stack = LocalStack(settings)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        _purge(stack.c.queue)


def _purge(queue: Any) -> None:
    """Drop what the case left scheduled (reminders), so the shared emulator does not keep
    calling a server that is gone."""
    for kind in queue.queues:
        queue.client.purge_queue(name=queue.queue_path(kind))


def _delivered_kinds(emulator: TasksEmulator, base_url: str) -> set[str]:
    """The task kinds the emulator POSTed to this server (its log, one line per request)."""
    found = re.findall(rf"Requesting POST {re.escape(base_url)}/tasks/(\w+)", emulator.output())
    return set(found)


def _local_files(data_dir: Path) -> list[str]:
    return sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())


def test_the_whole_sop_runs_on_the_cloud_adapters(
    cloud_stack: LocalStack,
    bucket: Bucket,
    tasks_emulator: TasksEmulator,
) -> None:
    stack = cloud_stack
    c = stack.c
    # GIVEN the local server on the cloud adapters, with no task worker of its own
    assert isinstance(c.store, FirestoreCaseStore)
    assert isinstance(c.queue, CloudTasksQueue)
    assert isinstance(c.blobs, GcsBlobStore if bucket.kind == "gcs" else S3BlobStore)
    assert stack.worker is None

    # WHEN a resident and each officer do their part over HTTP
    lines: list[str] = []
    tl = demo.run(stack.base_url, out=lines.append, office=Office.of(c))

    # THEN the case is delivered and every one of the eight SOP steps was done by its role
    assert tl["state"] == "delivered", lines
    done = {s["number"]: s for s in tl["steps"] if s["done_at"]}
    assert sorted(done) == list(range(1, 9))
    assert done[2]["done_by"] == "system"
    assert done[3]["done_by"] == "loket.sombaopu@sapa.test"
    assert done[6]["done_by"] == "operator.siak@sapa.test"
    assert done[8]["done_by"] == "kadis@sapa.test"
    assert any("Dokumen bertanda tangan" in line for line in lines)  # reached WhatsApp

    # AND the case is in Firestore: a store of its own, on the emulator, reads it back
    case_id = tl["case_id"]
    fresh = FirestoreCaseStore(c.settings.secret("gcp_project"))
    case = fresh.get(case_id)
    assert case.state == "delivered" and case.outbox == []
    events = [e.event for e in fresh.events(case_id)]
    assert events.index("submit_form") < events.index("sign") < events.index("deliver")
    # AND the resident's survey answer is kept and counted in Firestore's survey cells
    assert case.survey is not None
    day = case.survey.at.astimezone(ZoneInfo(c.region.timezone)).date()
    assert fresh.rollup_total(SURVEY, day, day, kecamatan=ALL, service=ALL)["n"] == 1

    # AND the files are in the bucket: the guest book's photo and PDF, the SIAK draft and
    # hand-off package, and the signed PDF, which carries a PAdES signature of the dev CA
    keys = bucket.keys()
    assert case.signed is not None and case.draft is not None and case.handoff is not None
    assert len(case.documents) == 2
    for ref in (*case.documents, case.draft, case.handoff, case.signed):
        assert ref.key in keys
    signed = c.blobs.get(case.signed.key)
    report = verify_signature(signed, [c.signer.ca_certificate_pem])  # type: ignore[attr-defined]
    assert report.intact and report.valid and report.trusted and report.covers_whole_document

    # AND the SIAK operator downloads the hand-off package, holding the resident's files as
    # the bucket has them: on S3 from a presigned URL; on fake-gcs-server the function serves
    # it (its anonymous client has no key to sign a URL with)
    operator = Officer(f"{stack.base_url}/staff", "operator.siak@sapa.test")
    operator.login()
    got = operator.checked(operator.send("GET", f"/cases/{case_id}/handoff"), "handoff")
    operator.close()
    from_bucket = bool(got.history) and got.url.startswith(
        bucket.settings.get("s3_endpoint_url", "-")
    )
    assert from_bucket == (bucket.kind == "s3"), (got.history, got.url)
    with zipfile.ZipFile(io.BytesIO(got.content)) as package:
        packed = {hashlib.sha256(package.read(n)).hexdigest() for n in package.namelist()}
    assert {d.sha256 for d in case.documents} <= packed

    sign = next(e for e in fresh.events(case_id) if e.event == "sign")
    page = requests.get(f"{stack.base_url}/verify/d/{sign.detail['document_id']}", timeout=10)
    assert page.status_code == 200 and case.reg_no in page.text

    # AND every task went through Cloud Tasks: the emulator POSTed each kind to this server
    assert _delivered_kinds(tasks_emulator, stack.base_url) >= WALK_TASKS

    # AND nothing went to the embedded stores: only the files of the local stand-ins for
    # Meta, BSrE and Secret Manager are under the data directory
    data_dir = c.settings.sapa_data_dir
    for name in EMBEDDED_STORES:
        assert not (data_dir / name).exists(), name
    files = _local_files(data_dir)
    assert "secrets.json" in files
    unexpected = [f for f in files if not any(a.fullmatch(f) for a in ALLOWED)]
    assert unexpected == []
