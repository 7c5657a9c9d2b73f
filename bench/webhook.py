"""Benchmark: the WhatsApp webhook's ack (latency, throughput) and its correctness under load.

SUT: a real LocalStack (waitress, random port) with its task worker off: the webhook stores the
message and queues its follow-up tasks durably, and nothing else competes for the CPU. Meta
text-message payloads, each with a new wamid, from many residents over the 18 kecamatan numbers
(`demo-7306NN`), signed with the stack's app secret.

FLOOR: `bench.floor.floor`, a bare function that only checks the signature, served the same way.
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import floor as floor_function
from bench.client import ClientProcess, LoadResult, Signed
from bench.harness import Context, Row, benchmark, check, percentile, vs_floor
from bench.servers import captured_waitress_warnings, serve_function
from sapa.adapters.meta_webhook import sign_body
from sapa.dev.localserver import LocalStack
from sapa.settings import load_settings

KECAMATAN = tuple(f"7306{n:02d}" for n in range(1, 19))
GREETING = "Halo"
FOLLOW_UPS = (
    "Selamat siang, saya mau mengurus Kartu Keluarga baru",
    "Apakah bisa diproses hari ini?",
    "Terima kasih banyak",
    "Maaf, link-nya belum masuk",
    "STATUS",
)
NAMES = ("Andi Baso", "Siti Rahma", "Muh. Ilham", "Nurul Fadillah", "Daeng Ngalle")
LATENCY_TARGET = 2.0  # median ack ≤ 2 × floor


@dataclass(frozen=True)
class Params:
    warmup: int
    levels: dict[int, int]  # concurrent senders → requests per side (over all rounds)
    rounds: int  # SUT and floor alternate this many times at each level (drift hits both)
    check_messages: int
    check_residents: int


FULL = Params(
    warmup=200,
    levels={1: 1000, 8: 1200, 64: 1920},
    rounds=4,
    check_messages=200,
    check_residents=120,
)
QUICK = Params(
    warmup=20,
    levels={1: 60, 8: 80, 64: 128},
    rounds=1,
    check_messages=200,
    check_residents=120,
)


# ---- payloads ---------------------------------------------------------------------------------


def wa_id_of(resident: int) -> str:
    return f"62812{resident:08d}"


def kecamatan_of(resident: int) -> str:
    return KECAMATAN[resident % len(KECAMATAN)]


def text_payload(wamid: str, resident: int, body: str, at: int) -> bytes:
    """A Meta webhook body with one text message, as the Cloud API sends it."""
    wa_id = wa_id_of(resident)
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "6281100000000",
                                    "phone_number_id": f"demo-{kecamatan_of(resident)}",
                                },
                                "contacts": [
                                    {
                                        "profile": {"name": NAMES[resident % len(NAMES)]},
                                        "wa_id": wa_id,
                                    }
                                ],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": wamid,
                                        "timestamp": str(at),
                                        "type": "text",
                                        "text": {"body": body},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


class Traffic:
    """An endless stream of signed text messages, each with a new wamid. One in `new_every` comes
    from a resident writing for the first time (a greeting that opens a case); the others are
    follow-ups from residents seen before. The mix is the same in every phase and for both
    sides, so SUT and floor get alike bodies."""

    def __init__(self, secret: str, tag: str, *, seed: int = 7306, new_every: int = 4) -> None:
        self.secret = secret
        self.tag = tag
        self.rng = random.Random(seed)  # noqa: S311 - traffic shape, not security
        self.new_every = new_every
        self.sent = 0
        self.residents = 0
        self.at = int(time.time())

    def next(self) -> Signed:
        i = self.sent
        self.sent += 1
        if i % self.new_every == 0 or self.residents == 0:
            resident, text = self.residents, GREETING
            self.residents += 1
        else:
            resident = self.rng.randrange(self.residents)
            text = self.rng.choice(FOLLOW_UPS)
        raw = text_payload(f"wamid.bench-{self.tag}-{i:07d}", resident, text, self.at)
        return raw, sign_body(self.secret, raw)

    def take(self, n: int) -> list[Signed]:
        return [self.next() for _ in range(n)]


def correctness_batch(
    secret: str, messages: int, residents: int, *, seed: int = 1945
) -> tuple[list[Signed], set[str], set[tuple[str, str]]]:
    """`messages` signed posts from `residents` residents: each writes once, some several times
    (posted at once, their first messages race to open the case). Returns the posts in random
    order, the wamids and the (kecamatan, wa_id) pairs expected in the store."""
    rng = random.Random(seed)  # noqa: S311 - traffic shape, not security
    owners = list(range(residents)) + [
        rng.randrange(residents) for _ in range(messages - residents)
    ]
    rng.shuffle(owners)
    at = int(time.time())
    items: list[Signed] = []
    wamids: set[str] = set()
    for i, resident in enumerate(owners):
        wamid = f"wamid.bench-check-{i:05d}"
        raw = text_payload(wamid, resident, GREETING if i % 3 else rng.choice(FOLLOW_UPS), at)
        items.append((raw, sign_body(secret, raw)))
        wamids.add(wamid)
    pairs = {(kecamatan_of(r), wa_id_of(r)) for r in range(residents)}
    return items, wamids, pairs


# ---- measurement ------------------------------------------------------------------------------


@dataclass
class Side:
    """Everything measured on one side (SUT or floor) at one concurrency level."""

    requests: int = 0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    non_2xx: int = 0
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, r: LoadResult, server_cpu_s: float) -> None:
        self.requests += r.requests
        self.wall_s += r.wall_s
        self.server_cpu_s += server_cpu_s
        self.client_cpu_s += r.client_cpu_s
        self.non_2xx += r.non_2xx
        self.latencies_s += r.latencies_s
        for code, n in r.statuses.items():
            self.statuses[code] = self.statuses.get(code, 0) + n

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies_s, p) * 1000

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_s
        return {
            "requests": self.requests,
            "wall_s": round(self.wall_s, 4),
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": {
                "p50": round(self.ms(50), 3),
                "p90": round(self.ms(90), 3),
                "p99": round(self.ms(99), 3),
                "mean": round(statistics.fmean(lat) * 1000, 3) if lat else None,
                "max": round(max(lat) * 1000, 3) if lat else None,
            },
            "server_cpu_ms_per_request": round(self.server_cpu_s / self.requests * 1000, 3)
            if self.requests
            else None,
            "client_cpu_share": round(self.client_cpu_s / self.wall_s, 3) if self.wall_s else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


def _load(
    client: ClientProcess, url: str, items: list[Signed], concurrency: int
) -> tuple[LoadResult, float]:
    """Run one load from the client process; the server CPU is this process's CPU meanwhile
    (the servers are its threads, the client is elsewhere)."""
    cpu0 = time.process_time()
    result = client.post_all(url, items, concurrency)
    return result, time.process_time() - cpu0


def _counts(db: Path, wamids: set[str], pairs: set[tuple[str, str]]) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        inbound = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM messages WHERE json_extract(doc, '$.direction') = 'in'"
            )
        }
        (inbound_rows,) = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE json_extract(doc, '$.direction') = 'in'"
        ).fetchone()
        per_pair = conn.execute(
            "SELECT kecamatan, wa_id, COUNT(*) FROM cases GROUP BY kecamatan, wa_id"
        ).fetchall()
    finally:
        conn.close()
    stored = inbound & wamids
    case_pairs = {(k, w) for k, w, _ in per_pair}
    return {
        "inbound_messages": int(inbound_rows),
        "lost_messages": len(wamids - stored),
        "extra_messages": int(inbound_rows) - len(stored),
        "cases": sum(int(n) for _, _, n in per_pair),
        "duplicated_cases": sum(int(n) - 1 for _, _, n in per_pair),
        "residents_without_case": len(pairs - case_pairs),
    }


def _task_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    finally:
        conn.close()


# The synthetic traffic gives each resident far more messages a minute than a person types (at
# 300 acks/s a resident's follow-ups come seconds apart): the per-sender limit is lifted so
# that the normal path is measured, not the paused one. Its counter is still written per
# message, so its cost is in the figures.
SENDERS_UNLIMITED = {"wa_sender_rate_per_minute": 1_000_000}


def _start_stack(data_dir: Path) -> LocalStack:
    stack = LocalStack(load_settings(sapa_data_dir=data_dir, **SENDERS_UNLIMITED))
    # No task worker: the follow-up tasks (guest-book links …) accumulate in the durable queue
    # instead of competing with the webhook for the CPU.
    stack.start(worker=False)
    return stack


def measure_load(ctx: Context, client: ClientProcess, p: Params, tmp: Path) -> list[Row]:
    stack = _start_stack(tmp / "load")
    try:
        secret = stack.c.settings.secret("wa_app_secret")
        floor_function.configure(secret)
        floor_srv = serve_function(
            floor_function.floor, stack.server, stack.c.settings.max_upload_mb
        )
        try:
            urls = {"sut": f"{stack.base_url}/wa/webhook", "floor": f"{floor_srv.base_url}/"}
            traffic = {side: Traffic(secret, side) for side in urls}
            ctx.note(
                f"SUT: LocalStack (waitress, {stack.server.adj.threads} threads) started with"
                " worker=False: follow-up tasks only accumulate in the durable queue."
            )
            ctx.note(
                f"FLOOR: bench/floor.py (HMAC check of the raw body, 200) behind the same Flask"
                f" wrapping and waitress ({floor_srv.threads} threads), same client."
            )
            ctx.log(f"warm-up: {p.warmup} requests per side")
            for side, url in urls.items():
                r, _ = _load(client, url, traffic[side].take(p.warmup), 1)
                if r.non_2xx:
                    raise RuntimeError(f"{side} refused warm-up requests: {r.statuses} {r.errors}")
            results: dict[int, dict[str, Side]] = {}
            for conc, total in p.levels.items():
                sides = {"floor": Side(), "sut": Side()}
                per_round = max(conc, total // p.rounds)
                for _ in range(p.rounds):
                    for side in ("floor", "sut"):
                        items = traffic[side].take(per_round)
                        r, cpu = _load(client, urls[side], items, conc)
                        sides[side].add(r, cpu)
                ctx.log(
                    f"{conc:>2} sender(s): sut {sides['sut'].throughput:7.1f} req/s,"
                    f" floor {sides['floor'].throughput:7.1f} req/s"
                )
                results[conc] = sides
            if any(s["floor"].non_2xx for s in results.values()):
                raise RuntimeError("the floor refused requests: its figures would be meaningless")
            ctx.note(
                f"Traffic: every post a new wamid; 1 in {traffic['sut'].new_every} from a new"
                f" resident (a greeting that opens a case), the rest follow-ups —"
                f" {traffic['sut'].residents} residents over {len(KECAMATAN)} kecamatan numbers."
            )
        finally:
            floor_srv.stop()
        tasks = _task_count(stack.c.settings.sapa_data_dir / "tasks.db")
    finally:
        stack.stop()
    ctx.details["load"] = {
        str(conc): {side: s.summary() for side, s in sides.items()}
        for conc, sides in results.items()
    }
    ctx.details["load_tasks_queued"] = tasks

    one = results[1]
    rows = [
        vs_floor(
            "ack latency p50, 1 sender",
            one["sut"].ms(50),
            one["floor"].ms(50),
            "ms",
            target=LATENCY_TARGET,
        ),
        vs_floor("ack latency p99, 1 sender", one["sut"].ms(99), one["floor"].ms(99), "ms"),
    ]
    for conc, sides in results.items():
        if conc == 1:
            continue
        for pct in (50, 99):
            rows.append(
                vs_floor(
                    f"ack latency p{pct}, {conc} senders",
                    sides["sut"].ms(pct),
                    sides["floor"].ms(pct),
                    "ms",
                )
            )
    for conc, sides in results.items():
        label = "sender" if conc == 1 else "senders"
        rows.append(
            vs_floor(
                f"throughput, {conc} {label}",
                sides["sut"].throughput,
                sides["floor"].throughput,
                "req/s",
            )
        )
    sut_cpu = sum(s["sut"].server_cpu_s for s in results.values())
    sut_n = sum(s["sut"].requests for s in results.values())
    floor_cpu = sum(s["floor"].server_cpu_s for s in results.values())
    floor_n = sum(s["floor"].requests for s in results.values())
    rows.append(
        vs_floor(
            "server CPU per ack",
            sut_cpu / sut_n * 1000,
            floor_cpu / floor_n * 1000,
            "ms",
        )
    )
    rows.append(
        check("non-2xx acks under load (SUT)", sum(s["sut"].non_2xx for s in results.values()))
    )
    busiest = max(results)
    share = results[busiest]["floor"].client_cpu_s / results[busiest]["floor"].wall_s
    if share > 0.85:
        ctx.note(
            f"At {busiest} senders the client process was busy {share:.0%} of the floor's run:"
            " the floor's throughput there is partly client-bound (the ratio flatters the SUT)."
        )
    return rows


def measure_correctness(ctx: Context, client: ClientProcess, p: Params, tmp: Path) -> list[Row]:
    stack = _start_stack(tmp / "check")
    try:
        secret = stack.c.settings.secret("wa_app_secret")
        url = f"{stack.base_url}/wa/webhook"
        adj = stack.server.adj
        ctx.details["sut_waitress"] = {
            "threads": adj.threads,
            "connection_limit": adj.connection_limit,
            "backlog": adj.backlog,
        }
        items, wamids, pairs = correctness_batch(secret, p.check_messages, p.check_residents)
        n = len(items)
        ctx.log(f"correctness: {n} concurrent posts from {len(pairs)} residents, then again")
        first = client.post_all(url, items, n, collect_json=True)
        data = stack.c.settings.sapa_data_dir
        tasks_after_first = _task_count(data / "tasks.db")
        again = client.post_all(url, items, n, collect_json=True)
        tasks_after_again = _task_count(data / "tasks.db")
        counts = _counts(data / "sapa.db", wamids, pairs)
    finally:
        stack.stop()
    ctx.details["correctness"] = {
        "posts": n,
        "residents": len(pairs),
        "first_pass": {
            "http_statuses": first.statuses,
            "errors": first.errors,
            "answers": first.json_sums,  # summed numeric fields of the webhook's JSON answers
        },
        "re_post": {
            "http_statuses": again.statuses,
            "errors": again.errors,
            "answers": again.json_sums,
        },
        "tasks_after_first_pass": tasks_after_first,
        "tasks_after_re_post": tasks_after_again,
        **counts,
    }
    ctx.note(
        f"Correctness: {n} posts ({n} wamids, {len(pairs)} residents, some writing several times)"
        f" sent by {n} concurrent senders on a fresh stack, then all {n} re-posted the same way;"
        f" store: {counts['inbound_messages']} inbound messages, {counts['cases']} cases;"
        f" first pass routed {first.json_sums.get('routed', 0):.0f},"
        f" re-post answered {again.json_sums.get('duplicates', 0):.0f} as duplicates."
    )
    rows = [
        check("lost inbound messages", counts["lost_messages"]),
        check(
            "duplicated (messages + cases per kecamatan, wa_id)",
            counts["extra_messages"] + counts["duplicated_cases"],
        ),
        check("non-2xx acks, concurrent first pass", first.non_2xx),
        check("non-2xx acks, concurrent re-post", again.non_2xx),
    ]
    if first.non_2xx == 0:
        # Only meaningful when the first pass stored everything: then a re-post must queue nothing.
        rows.append(check("tasks queued by re-posts", tasks_after_again - tasks_after_first))
    return rows


@benchmark("webhook", "WhatsApp webhook: ack latency/throughput vs a bare HMAC function; no loss")
def webhook(ctx: Context) -> list[Row]:
    p = QUICK if ctx.quick else FULL
    with (
        tempfile.TemporaryDirectory(prefix="sapa-bench-") as tmp,
        ClientProcess() as client,
    ):
        with captured_waitress_warnings() as load_warnings:
            rows = measure_load(ctx, client, p, Path(tmp))
        with captured_waitress_warnings() as check_warnings:
            rows += measure_correctness(ctx, client, p, Path(tmp))
    ctx.details["waitress_warnings"] = {
        "load": load_warnings.summary(),
        "correctness": check_warnings.summary(),
    }
    if check_warnings.connection_limit_hits:
        ctx.note(
            "Waitress's connection_limit"
            f" ({ctx.details['sut_waitress']['connection_limit']}) was reached by the concurrent"
            " posts: the excess connections waited in the listen backlog (not an error)."
        )
    ctx.note(
        "Client: a separate process (no shared GIL with the servers), threads with one keep-alive"
        " requests.Session each; percentiles are nearest-rank; throughput = requests / wall time"
        " from a common start; server CPU = CPU time of the serving process per request."
    )
    return rows
