"""A server the integration tests need that cannot be had: a visible skip on a developer's
machine, a failure in CI (which sets SAPA_REQUIRE_EMULATORS=1), never a silent pass."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.contract.server_process import REQUIRE, unavailable


def test_a_missing_emulator_skips_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="java is not installed"):
        unavailable("java is not installed")


def test_where_emulators_are_required_a_missing_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="java is not installed"):
        unavailable("java is not installed")


def test_ci_requires_the_emulators() -> None:
    assert f"export {REQUIRE}=1" in (ROOT / ".ci" / "run").read_text()
