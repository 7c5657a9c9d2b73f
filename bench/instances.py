"""One function instance as Cloud Functions runs it: `functions-framework --target NAME --source
functions/main.py` in a fresh process (gunicorn master + one worker, as functions-framework
serves by default), on 127.0.0.1 and a free port, stopped by its PID.

`FunctionInstance.first_response` measures spawn → the first HTTP answer to a probe request
(cold start); `peak_rss` reads the kernel's high-water mark of resident memory (VmHWM) of the
process that served the request, which includes everything the master imported before forking.

Every instance finds our modules already compiled (`ensure_bytecode`), as a deployed one does:
the deploy bundle ships their bytecode (scripts/bundle.py), and the installed libraries have
theirs from pip. Without it a machine that forbids writing bytecode (PYTHONDONTWRITEBYTECODE)
would charge every spawn the compilation of our sources, a cost no deployed instance pays.
"""

from __future__ import annotations

import compileall
import contextlib
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_MAIN = ROOT / "functions" / "main.py"
FLOOR_SOURCE = ROOT / "bench" / "floor.py"

# A probe: given the base URL and a session, send one request and return the response.
Probe = Callable[[str, requests.Session], requests.Response]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss(pid: int) -> int:
    """Peak resident set size of `pid` in bytes (VmHWM; the current RSS where unavailable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if m:
            return int(m.group(1)) * 1024
    except OSError:
        pass
    return int(psutil.Process(pid).memory_info().rss)


@functools.cache
def ensure_bytecode() -> None:
    """Compile functions/, shared/ and bench/ into their __pycache__ folders (once per run)."""
    for folder in ("functions", "shared", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)


class FunctionInstance:
    def __init__(
        self,
        target: str,
        env: dict[str, str],
        *,
        source: Path = FUNCTIONS_MAIN,
        importtime_log: Path | None = None,
        log: Path | None = None,
    ) -> None:
        ensure_bytecode()
        self.target = target
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable]
        if importtime_log is not None:
            cmd += ["-X", "importtime"]
        cmd += [
            "-m",
            "functions_framework",
            "--target",
            target,
            "--source",
            str(source),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        # One worker with few threads, like a small Cloud Functions instance; nothing from the
        # caller's environment may change how it serves.
        full_env.setdefault("WORKERS", "1")
        full_env.setdefault("THREADS", "8")
        stderr: Any = subprocess.DEVNULL
        if importtime_log is not None:
            stderr = importtime_log.open("wb")
        elif log is not None:
            stderr = log.open("wb")
        self._stderr = stderr
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=stderr
        )

    def first_response(self, probe: Probe, timeout: float = 60.0) -> tuple[float, int]:
        """Seconds from spawn to the first answer to `probe`, and its status (retried while the
        port refuses connections)."""
        deadline = self.t0 + timeout
        with requests.Session() as s:
            s.trust_env = False
            while True:
                try:
                    resp = probe(self.base_url, s)
                    return time.perf_counter() - self.t0, resp.status_code
                except requests.ConnectionError:
                    if self.proc.poll() is not None:
                        raise RuntimeError(
                            f"{self.target}: the instance exited with {self.proc.returncode}"
                        ) from None
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"{self.target}: no answer in {timeout:.0f} s") from None
                    time.sleep(0.005)

    def serving_pid(self) -> int:
        """The worker that serves requests (the master itself without a worker)."""
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return self.proc.pid
        return children[0].pid if children else self.proc.pid

    def peak_rss(self) -> int:
        return peak_rss(self.serving_pid())

    def stop(self) -> None:
        pids = []
        with contextlib.suppress(psutil.NoSuchProcess):
            pids = [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in pids:  # a worker the master did not take with it
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        if hasattr(self._stderr, "close"):
            self._stderr.close()

    def __enter__(self) -> FunctionInstance:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---- python -X importtime ---------------------------------------------------------------------

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def parse_importtime(text: str) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) for every line of `-X importtime` output."""
    rows = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    return rows


def importtime_summary(rows: list[tuple[str, int, int, int]], top: int = 6) -> dict[str, Any]:
    """Total import time, the top-level imports that dominate it, and every module loaded."""
    total = sum(r[1] for r in rows)
    tops: dict[str, int] = {}
    for name, _, cum, depth in rows:
        if depth == 0:
            root = name.split(".")[0]
            tops[root] = tops.get(root, 0) + cum
    ranked = sorted(tops.items(), key=lambda kv: -kv[1])[:top]
    return {
        "total_ms": round(total / 1000, 1),
        "top_ms": {k: round(v / 1000, 1) for k, v in ranked},
        "modules": sorted({r[0] for r in rows}),
    }


def package_ms(rows: list[tuple[str, int, int, int]], packages: tuple[str, ...]) -> float:
    """Milliseconds spent importing `packages` (and their submodules, which some packages load
    lazily from elsewhere) and everything they pulled in (each one's import subtree, counted
    once even where the subtrees nest)."""
    counted: set[int] = set()
    for i, (name, _, _, depth) in enumerate(rows):
        if not any(name == p or name.startswith(p + ".") for p in packages):
            continue
        # importtime prints children before their parent, deeper indented
        j = i
        counted.add(i)
        while j > 0 and rows[j - 1][3] > depth:
            j -= 1
            counted.add(j)
    return sum(rows[i][1] for i in counted) / 1000
