"""checkov (static analysis of the terraform) passes over infra/.

checkov pins versions that conflict with ours, so it lives in its own virtual environment,
`.venv-checkov` at the repository root, created on first use and kept. Without a network that
cannot be created: the test then skips with the reason, except where SAPA_REQUIRE_CHECKOV=1
(CI), where it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import INFRA, ROOT

VENV = ROOT / ".venv-checkov"
CHECKOV = VENV / "bin" / "checkov"
REQUIREMENT = "checkov>=3.2,<4"


def _unavailable(reason: str) -> None:
    if os.environ.get("SAPA_REQUIRE_CHECKOV") == "1":
        pytest.fail(f"checkov is required (SAPA_REQUIRE_CHECKOV=1) but {reason}")
    pytest.skip(f"checkov not available: {reason} (set SAPA_REQUIRE_CHECKOV=1 to require it)")


@pytest.fixture(scope="session")
def checkov() -> Path:
    if CHECKOV.exists():
        return CHECKOV
    log = ROOT / "var" / "checkov-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("w", encoding="utf-8") as out:
            subprocess.run(
                [sys.executable, "-m", "venv", str(VENV)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
            subprocess.run(
                [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", REQUIREMENT],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"installing {REQUIREMENT} into {VENV.name} failed ({exc}); see {log}")
    if not CHECKOV.exists():
        _unavailable(f"{CHECKOV} missing after install; see {log}")
    return CHECKOV


@pytest.mark.timeout(1200)
def test_checkov_passes_over_infra(checkov: Path) -> None:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(INFRA),
            "--framework",
            "terraform",
            "--skip-download",  # no calls home: the checks bundled with this version
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov findings:\n" + "\n".join(failed)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 20, "checkov checked almost nothing: did it read infra/?"
    assert proc.returncode == 0, proc.stderr[-2000:]
