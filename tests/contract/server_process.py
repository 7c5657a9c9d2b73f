"""A real server process started for the contract tests (emulators, fakes): its lifetime."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO, Any


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
