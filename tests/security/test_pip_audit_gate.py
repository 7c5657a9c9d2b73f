"""The verdict of `make audit` (tests/security/pip_audit_gate.py) on pip-audit's JSON."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security import pip_audit_gate as gate


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


def test_a_vulnerability_with_a_fix_fails_and_names_the_upgrade(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {
            "name": "jinja2",
            "version": "3.1.0",
            "vulns": [{"id": "GHSA-x", "fix_versions": ["3.1.5"]}],
        },
        {"name": "ecdsa", "version": "0.19.0", "vulns": [{"id": "PYSEC-y", "fix_versions": []}]},
    )
    monkeypatch.setattr(gate, "audit", lambda service: gate.interpret(service, report))
    assert gate.main() == 1
    out = capsys.readouterr().out
    assert "VULNERABLE, upgrade: jinja2 3.1.0: GHSA-x (fixed in 3.1.5)" in out
    assert "without a fix: ecdsa 0.19.0: PYSEC-y" in out


def test_only_unfixable_vulnerabilities_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report(
        {"name": "ecdsa", "version": "0.19.0", "vulns": [{"id": "P", "fix_versions": []}]}
    )
    monkeypatch.setattr(gate, "audit", lambda service: gate.interpret(service, report))
    assert gate.main() == 0


def test_nothing_audited_is_not_a_clean_bill(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    skipped = _report({"name": "flask", "version": "3.1.3", "skip_reason": "not found on PyPI"})
    calls: list[str] = []

    def audit(service: str) -> gate.Outcome:
        calls.append(service)
        if service == "osv":
            return gate.Outcome("osv", False, "Failed to resolve 'api.osv.dev'")
        return gate.interpret(service, skipped)

    monkeypatch.setattr(gate, "audit", audit)
    monkeypatch.delenv("SAPA_REQUIRE_AUDIT", raising=False)
    assert gate.main() == 0
    assert calls == ["osv", "pypi"]
    assert "NOT audited" in capsys.readouterr().out
    monkeypatch.setenv("SAPA_REQUIRE_AUDIT", "1")
    assert gate.main() == 1
