"""Fixtures every layer shares: a container on a temporary data directory with a settable clock."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from sapa import bootstrap
from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.ports import Task
from sapa.settings import load_settings
from tests.fakes import FakeWhatsApp

ROOT = Path(__file__).resolve().parents[1]

# tests.log_guard fails the run when a log record would leak a NIK, a phone number or a
# secret. The emulators and servers are session fixtures of their own modules, registered here
# once so that every test directory shares one process of each per run.
pytest_plugins = [
    "tests.log_guard",
    "pytester",
    "tests.contract.firestore_emulator",
    "tests.contract.cloud_tasks_emulator",
    "tests.contract.blob_servers",
]


class RecordingQueue:
    """A TaskQueue that keeps tasks in memory (named dedupe included) for service tests that
    must decide themselves when each task runs."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self.names: set[str] = set()

    def enqueue(self, task: Task) -> bool:
        if task.name is not None:
            if task.name in self.names:
                return False
            self.names.add(task.name)
        self.tasks.append(task)
        return True

    def take(self) -> list[Task]:
        out, self.tasks = self.tasks, []
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_container(tmp: Path, **overrides: Any) -> Container:
    settings = load_settings(sapa_data_dir=tmp, **overrides)
    return Container(settings)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def container(tmp_path: Path, clock: FixedClock) -> Iterator[Container]:
    """A local container on tmp_path; the clock is a FixedClock, the queue records tasks."""
    c = make_container(tmp_path / "var")
    c.clock = clock  # type: ignore[misc]
    c.queue = RecordingQueue()  # type: ignore[assignment,misc]
    bootstrap.install(c)
    yield c
    bootstrap.install(None)


@pytest.fixture
def wa(container: Container) -> FakeWhatsApp:
    """The container's WhatsApp, a recording fake."""
    fake = FakeWhatsApp()
    container.whatsapp = fake  # type: ignore[misc]
    return fake


@pytest.fixture
def queue(container: Container) -> RecordingQueue:
    q = container.queue
    assert isinstance(q, RecordingQueue)
    return q


def aged_token(real: URLSafeTimedSerializer, value: str, age_seconds: int) -> str:
    """A genuinely signed link token made `age_seconds` ago.

    itsdangerous stamps and checks with the real `time.time()`, not SAPA's Clock, so the
    FixedClock cannot age a link. Rather than patching `time.time` globally, the token is made
    with a TimestampSigner whose `get_timestamp` answers a moment in the past; everything else
    (secret, salt) is the serializer's own, so only the age differs."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    return URLSafeTimedSerializer(real.secret_keys[-1], salt=real.salt, signer=PastSigner).dumps(
        value
    )
