"""Shared fixtures of the contract tests: the fake BSrE service (one per module, reset around
each test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.bsre_fake import FakeBsre


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBsre]:
    with FakeBsre(slow_seconds=2.0) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeBsre) -> Iterator[FakeBsre]:
    server.reset()
    yield server
    server.reset()
