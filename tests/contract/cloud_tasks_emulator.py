"""The Cloud Tasks emulator (PyPI `gcloud-tasks-emulator`) for the contract tests.

It pins protobuf<5 while SAPA's Google client libraries need a newer one, so it lives in a
virtual environment of its own, `.venv-tasks-emulator` at the repository root, created on first
use (`python -m venv` + pip) and kept for later runs. Its command line binds every interface; we
start its server bound to 127.0.0.1 only, on a free port, and stop it by its PID.

`python -m tests.contract.cloud_tasks_emulator [PORT]` runs it in the foreground for a local
server on the cloud adapters (README: *Running on the cloud adapters locally*).

What it does: creates queues and tasks over gRPC and POSTs HTTP tasks to their URL with the
`X-CloudTasks-*` headers once their schedule_time has come. What it does not do: deduplicate
task names, back off between retries, or send OIDC tokens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.contract.server_process import stop_process, unavailable

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("SAPA_TASKS_EMULATOR_VENV", ROOT / ".venv-tasks-emulator"))
REQUIREMENTS = ("gcloud-tasks-emulator==0.6.2", "protobuf>=4.25,<5")
MAX_RETRIES = 20  # the emulator retries a failed task every 0.1 s; not forever

# Runs inside the emulator's venv: the emulator's own server, bound to loopback only.
LAUNCHER = """
import logging, sys
from concurrent import futures

import grpc
from gcloud_tasks_emulator import server as emulator
from gcloud_tasks_emulator.cloudtasks_pb2_grpc import add_CloudTasksServicer_to_server

host, port, retries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def run(self):  # APIThread.run, but on `host` instead of every interface
    self._httpd = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    add_CloudTasksServicer_to_server(emulator.Greeter(self._state), self._httpd)
    if not self._httpd.add_insecure_port(f"{host}:{self._port}"):
        raise SystemExit(f"cannot bind {host}:{self._port}")
    self._httpd.start()


emulator.APIThread.run = run
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
emulator.create_server(host, port, host, 80, [], retries).run()
"""


def python_in_venv() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> Path:
    """The emulator venv's python, creating the venv on first use. Raises RuntimeError with the
    reason (no network, no venv module, a read-only place, ...) when it cannot be created."""
    try:
        return _ensure_venv()
    except OSError as exc:
        raise RuntimeError(f"cannot create {VENV}: {exc}") from exc


def _ensure_venv() -> Path:
    stamp = VENV / ".installed"
    wanted = "\n".join(REQUIREMENTS)
    if stamp.is_file() and stamp.read_text() == wanted and python_in_venv().exists():
        return python_in_venv()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".venv-tasks-emulator.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one creator at a time (parallel test runs)
        if stamp.is_file() and stamp.read_text() == wanted and python_in_venv().exists():
            return python_in_venv()
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [str(python_in_venv()), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
        ]
        for step in steps:
            try:
                done = subprocess.run(
                    step, capture_output=True, text=True, timeout=600, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RuntimeError(f"{' '.join(step[:3])}: {exc}") from exc
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise RuntimeError(f"{' '.join(step[:4])} failed: {' / '.join(tail)}")
        stamp.write_text(wanted)
    return python_in_venv()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TasksEmulator:
    """A running emulator: `host` is "127.0.0.1:PORT" (TASKS_EMULATOR_HOST)."""

    def __init__(self, python: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log: IO[Any] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by stop()
            prefix="cloud-tasks-emulator-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [str(python), "-c", LAUNCHER, "127.0.0.1", str(self.port), str(MAX_RETRIES)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited: {self.output()[-500:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the emulator did not listen within {timeout} s")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, self.log)


@contextlib.contextmanager
def running_emulator() -> Iterator[TasksEmulator]:
    """Create the venv if needed, start the emulator, stop it afterwards. RuntimeError (with the
    reason) when it cannot be had."""
    python = ensure_venv()
    emulator = TasksEmulator(python)
    try:
        emulator.wait_ready()
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def tasks_emulator() -> Iterator[TasksEmulator]:
    """The session's emulator, shared by every test that needs one (each uses queues of a
    project of its own); skips with the reason (fails where SAPA_REQUIRE_EMULATORS=1) when its
    venv cannot be made or it does not start."""
    try:
        with running_emulator() as running:
            yield running
    except RuntimeError as exc:
        unavailable(f"Cloud Tasks emulator not available: {exc}")


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.contract.cloud_tasks_emulator [PORT]`: the emulator on 127.0.0.1:PORT
    (default 9022) in the foreground, for `make run` with QUEUE=cloudtasks (README). Does not
    return unless the venv cannot be made."""
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 9022
    try:
        python = ensure_venv()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Cloud Tasks emulator on 127.0.0.1:{port} (TASKS_EMULATOR_HOST)", flush=True)
    # The emulator takes this process's place: its PID is this one's, to stop it by.
    command = [str(python), "-c", LAUNCHER, "127.0.0.1", str(port), str(MAX_RETRIES)]
    os.execv(python, command)  # noqa: S606 - our own venv's python, no shell involved


if __name__ == "__main__":
    raise SystemExit(main())
