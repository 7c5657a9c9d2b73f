"""Google's Cloud Firestore emulator as a pytest fixture: one JVM per test session on a free port,
started directly with java (stopped by its PID), its data wiped before every test.

Skips (with the reason; fails where SAPA_REQUIRE_EMULATORS=1, as in CI) when java or the
emulator jar (`gcloud components install cloud-firestore-emulator`, or the
google-cloud-cli-firestore-emulator package) is missing.
FIRESTORE_EMULATOR_JAR overrides where the jar is looked for.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.contract.server_process import stop_process, unavailable

PROJECT = "sapa-contract"
_JAR = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


def find_jar() -> Path | None:
    """The emulator jar: $FIRESTORE_EMULATOR_JAR, the usual SDK roots, or `gcloud info`."""
    if os.environ.get("FIRESTORE_EMULATOR_JAR"):
        path = Path(os.environ["FIRESTORE_EMULATOR_JAR"])
        return path if path.is_file() else None
    roots = [Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk")]
    gcloud = shutil.which("gcloud")
    for root in roots:
        if (root / _JAR).is_file():
            return root / _JAR
    if gcloud:
        try:
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out and (Path(out) / _JAR).is_file():
            return Path(out) / _JAR
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FirestoreEmulator:
    """A running emulator process and how to reach it."""

    def __init__(self, java: str, jar: Path) -> None:
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
            prefix="firestore-emulator-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [java, "-cp", str(jar), _MAIN, "start", "--host=127.0.0.1", f"--port={self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"emulator not ready after {timeout}s: {self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text("utf-8", errors="replace")[-2000:]

    def reset(self, project: str = PROJECT) -> None:
        """Delete every document of the project's default database."""
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents"
        req = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - http to localhost
            assert resp.status == 200, resp.status

    def client(self, project: str = PROJECT) -> Any:
        """A Firestore client bound to this emulator (the variable is read at construction)."""
        from google.cloud import firestore

        with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": self.host}):
            return firestore.Client(project=project)

    def stop(self) -> None:
        stop_process(self.proc, self.log)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """The session's emulator; skips visibly when java or the jar is absent."""
    java = shutil.which("java")
    if java is None:
        unavailable("java is not installed: the Firestore emulator cannot run")
    jar = find_jar()
    if jar is None:
        unavailable(
            "Firestore emulator jar not found (install the Google Cloud CLI component"
            " cloud-firestore-emulator, or set FIRESTORE_EMULATOR_JAR)"
        )
    try:
        import google.cloud.firestore  # noqa: F401
    except ImportError:
        unavailable("google-cloud-firestore not installed")
    emulator = FirestoreEmulator(java, jar)
    try:
        try:
            emulator.wait_ready()
        except RuntimeError as exc:
            unavailable(f"the Firestore emulator did not start: {exc}")
        yield emulator
    finally:
        emulator.stop()
