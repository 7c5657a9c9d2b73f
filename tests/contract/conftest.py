"""Shared fixtures of the contract tests: the fake BSrE service (one per module, reset around
each test), and `make_store`, which builds a CaseStore of every adapter in turn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.cloud.firestore_store import FirestoreCaseStore
from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from sapa.ports import CaseStore
from tests.contract.bsre_fake import FakeBsre
from tests.contract.firestore_emulator import PROJECT, FirestoreEmulator

# Builds a store over the test's one database with the given options (tracker=, agenda=).
MakeStore = Callable[..., CaseStore]


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> MakeStore:
    path = tmp_path / "var" / "sapa.db"
    return lambda **options: SqliteCaseStore(path, **options)


def _firestore(tmp_path: Path, request: pytest.FixtureRequest) -> MakeStore:
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    emulator.reset()

    def make(**options: Any) -> CaseStore:
        return FirestoreCaseStore(PROJECT, client=emulator.client(), rollup_shards=3, **options)

    return make


@pytest.fixture(
    params=[
        pytest.param(_sqlite, id="sqlite"),
        pytest.param(_firestore, id="firestore", marks=pytest.mark.integration),
    ]
)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """Stores of the embedded adapter, then of Firestore on the emulator; every store one
    test makes shares its database."""
    factory: Callable[[Path, pytest.FixtureRequest], MakeStore] = request.param
    return factory(tmp_path, request)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBsre]:
    with FakeBsre(slow_seconds=2.0) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeBsre) -> Iterator[FakeBsre]:
    server.reset()
    yield server
    server.reset()
