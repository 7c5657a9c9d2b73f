"""A real server process started for the contract tests (emulators, fakes): its lifetime, and
what a test does when such a server cannot be had here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

# CI sets this: there every emulator must run, and one that cannot start fails its tests.
REQUIRE = "SAPA_REQUIRE_EMULATORS"


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason` (a server or its client library is missing here); where
    SAPA_REQUIRE_EMULATORS=1 (CI), fail it instead: there a skip would hide untested code."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the emulators are required here)", pytrace=False)
    pytest.skip(reason=f"{reason} (set {REQUIRE}=1 to require it)")


def stop_process(proc: subprocess.Popen[Any], log: IO[Any]) -> None:
    """Terminate (then kill) the process by its PID, and remove its log file."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    log.close()
    Path(log.name).unlink(missing_ok=True)
