"""The load generator: threads with one requests.Session each, run in a separate process.

The servers under test run in the benchmark's own process; the client runs in a child process
(`ClientProcess`) so that it does not share a GIL with them. SUT and floor get the same client.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

# (raw body, value of X-Hub-Signature-256)
Signed = tuple[bytes, str]


@dataclass
class LoadResult:
    """One load run: `requests` posts by `concurrency` senders."""

    concurrency: int
    requests: int
    wall_s: float
    latencies_s: list[float]
    statuses: dict[int, int]
    errors: list[str] = field(default_factory=list)  # transport errors (no HTTP response)
    client_cpu_s: float = 0.0  # CPU time the client process used during the run
    json_sums: dict[str, float] = field(default_factory=dict)  # numeric fields of JSON answers

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300) + len(
            self.errors
        )


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
    return s


def post_all(
    url: str,
    items: list[Signed],
    concurrency: int,
    *,
    collect_json: bool = False,
    timeout: float = 60.0,
) -> LoadResult:
    """POST every item to `url`, spread round-robin over `concurrency` threads that start
    together; each thread has its own keep-alive session. Latency is per request, wall time is
    from the common start to the last answer."""
    concurrency = max(1, min(concurrency, len(items))) if items else 1
    slices = [items[k::concurrency] for k in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: list[Counter[int]] = [Counter() for _ in range(concurrency)]
    sums: list[dict[str, float]] = [{} for _ in range(concurrency)]
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def sender(k: int) -> None:
        session = _session()
        lat, st, js = latencies[k], statuses[k], sums[k]
        try:
            start.wait()
            for raw, signature in slices[k]:
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
                t0 = time.perf_counter()
                try:
                    resp = session.post(url, data=raw, headers=headers, timeout=timeout)
                except requests.RequestException as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                lat.append(time.perf_counter() - t0)
                st[resp.status_code] += 1
                if collect_json:
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    if isinstance(body, dict):
                        for key, value in body.items():
                            if isinstance(value, int | float) and not isinstance(value, bool):
                                js[key] = js.get(key, 0.0) + value
        finally:
            session.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    total_status: Counter[int] = Counter()
    total_sums: dict[str, float] = {}
    for c in statuses:
        total_status.update(c)
    for s in sums:
        for key, value in s.items():
            total_sums[key] = total_sums.get(key, 0.0) + value
    return LoadResult(
        concurrency=concurrency,
        requests=len(items),
        wall_s=wall,
        latencies_s=[x for lat in latencies for x in lat],
        statuses=dict(total_status),
        errors=errors,
        client_cpu_s=cpu,
        json_sums=total_sums,
    )


def _ping() -> bool:
    json.dumps({})  # the child has imported this module (and requests) once this returns
    return True


class ClientProcess:
    """One child process (spawned: no inherited server threads) that runs `post_all`."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._pool.submit(_ping).result(timeout=60)

    def post_all(
        self, url: str, items: list[Signed], concurrency: int, *, collect_json: bool = False
    ) -> LoadResult:
        return self._pool.submit(
            post_all, url, items, concurrency, collect_json=collect_json
        ).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ClientProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
