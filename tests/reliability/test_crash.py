"""Crash test: the embedded server SIGKILLed at random moments while residents and officers
keep working; afterwards nothing is lost and nothing was done twice.

The WhatsApp simulator runs inside the server and is killed with it: it keeps every message
it received or sent in its own SQLite file (WAL; a commit survives SIGKILL) and, like Meta,
posts again every webhook that was not acknowledged (messages and statuses), also after a
restart. So the simulator's file is the resident's phone: what it holds was sent, once or
more, and is compared with what SAPA recorded. When the kills are over, the test replays any
dead letter with the queue's CLI, as the officer on duty would.

Knobs (environment): SAPA_CRASH_KILLS (default 50), SAPA_CRASH_CONCURRENCY (residents at a
time, default 6), SAPA_CRASH_SEED (default 20261129), SAPA_CRASH_MAX_PAUSE (longest pause
between kills in seconds, default 1.5). A soak: `SAPA_CRASH_KILLS=200 .venv/bin/python -m
pytest tests/reliability/test_crash.py`."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from sapa.adapters.embedded.sqlite_store import SqliteCaseStore
from tests.reliability.harness import (
    KECAMATAN,
    OFFICE,
    Http,
    Officer,
    Resident,
    Server,
    env_int,
    free_port,
    rows,
    signatures_in,
)

pytestmark = pytest.mark.e2e

KILLS = env_int("SAPA_CRASH_KILLS", 50)
CONCURRENCY = env_int("SAPA_CRASH_CONCURRENCY", 6)
SEED = env_int("SAPA_CRASH_SEED", 20261129)
MAX_PAUSE = float(os.environ.get("SAPA_CRASH_MAX_PAUSE") or 1.5)
# A task in flight when the server dies is delivered again when its lease (60 s) expires.
SETTLE_SECONDS = 150.0
# Outbound messages SAPA sends at most once per case on this path, by the kind it records.
ONCE_KINDS = {"guestbook_link", "form_received", "contacted"}


@pytest.mark.timeout(int(KILLS * (MAX_PAUSE + 3) + SETTLE_SECONDS + 120))
def test_random_kills_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = tmp_path / "var"
    server = Server(data, free_port(), tmp_path / "server.log")
    server.start()
    deadline = time.monotonic() + KILLS * (MAX_PAUSE + 2) + SETTLE_SECONDS
    residents: list[Resident] = []
    killing = threading.Event()
    killing.set()
    lock = threading.Lock()

    def keep_driving(worker: int) -> None:
        # New residents arrive as long as the server is being killed.
        n = 0
        while killing.is_set():
            n += 1
            with lock:
                r = Resident(
                    http=Http(server, deadline),
                    wa_id=f"62813{SEED % 1000:03d}{worker:02d}{n:03d}",
                    name=f"Warga {worker}-{n}",
                )
                residents.append(r)
            r.run()

    try:
        drivers = [
            threading.Thread(target=keep_driving, args=(w,), daemon=True)
            for w in range(CONCURRENCY)
        ]
        for t in drivers:
            t.start()
        # GIVEN residents and officers at work, WHEN the server is SIGKILLed KILLS times at
        # random moments and started again on the same port and data
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.1, MAX_PAUSE))
            server.kill()
            server.start()
        killing.clear()
        # The officer on duty replays what the queue gave up on (as the runbook says), so a
        # request whose task was dead-lettered still finishes.
        replayed = 0
        while any(t.is_alive() for t in drivers) and time.monotonic() < deadline:
            for (dead_id,) in rows(data / "tasks.db", "SELECT id FROM dead_letters"):
                if "replayed" in server.queue_cli("replay", str(dead_id)):
                    replayed += 1
            time.sleep(1.0)

        # THEN (once the last server's recovery had its chance) every case is delivered or
        # waits, visibly, for an officer or in the dead letters
        settle(server, deadline)
        dead = server.queue_cli("dead", "--verbose")
        stats = server.queue_cli("stats")
        unfinished = [r for r in residents if not r.done]
        # Looking is not bound by the drivers' deadline: a driver stuck until then must still
        # be reported with where it stood.
        look = Http(server, time.monotonic() + 60)
        invisible = [r for r in unfinished if not visible(look, data, r, dead)]
    finally:
        server.stop()

    report = (
        f"{server.kills} kills, {len(residents)} residents "
        f"({len(residents) - len(unfinished)} delivered, {replayed} dead letters replayed);"
        f" queue:\n{stats}\n{dead}"
    )
    print(report)
    assert server.kills == KILLS
    assert not invisible, "cases neither delivered nor visible to staff:\n" + "\n".join(
        f"{r.wa_id} {r.case_id} {r.error}: {r.log[-5:]}" for r in invisible
    )
    stuck = [r for r in unfinished if r.error == "deadline passed"]
    assert not stuck, "drivers still waiting at the deadline:\n" + "\n".join(
        f"{r.wa_id} {r.reg_no} {r.case_id}: {r.log[-8:]}" for r in stuck
    )
    assert len(residents) - len(unfinished) >= CONCURRENCY, report  # the run did real work

    problems = audit(data, residents)
    assert not problems, "\n".join(problems) + "\n" + report


def settle(server: Server, deadline: float) -> None:
    """Wait until no task is due or leased and the simulator owes no webhook."""
    tasks, sim = server.data_dir / "tasks.db", server.data_dir / "wa_simulator.db"
    while time.monotonic() < deadline:
        now = time.time()
        busy = rows(tasks, "SELECT COUNT(*) FROM tasks WHERE schedule_at <= ?", now + 5)[0][0]
        owed = rows(
            sim,
            "SELECT COUNT(*) FROM messages WHERE (direction = 'in' AND (webhook_status IS NULL"
            " OR webhook_status NOT BETWEEN 200 AND 299)) OR (direction = 'out'"
            " AND status NOT IN ('read', 'failed') AND COALESCE(status_acked, '') != 'delivered')",
        )[0][0]
        if not busy and not owed:
            return
        time.sleep(0.5)


def visible(http: Http, data: Path, r: Resident, dead_letters: str) -> bool:
    """An officer can act on the case: a worklist shows it, or the CLI lists its dead task."""
    if r.case_id is None:  # the driver never learnt it: the resident's number finds it
        store = SqliteCaseStore(data / "sapa.db")
        case = store.latest_for(KECAMATAN, r.wa_id)
        if case is None:
            return False
        r.case_id = case.id
    if r.case_id in dead_letters:
        return True
    for email in OFFICE.officers(KECAMATAN):
        rows_ = Officer(http, email).get("/worklist")["cases"]
        if any(c["id"] == r.case_id for c in rows_):
            return True
    return False


def audit(data: Path, residents: list[Resident]) -> list[str]:
    """Everything the data directory says went wrong: lost tasks or messages, repeats."""
    problems: list[str] = []
    now = time.time()
    # Tasks: every name ever enqueued is done (gone from `tasks`) or dead-lettered.
    tasks = data / "tasks.db"
    left = rows(tasks, "SELECT name, kind, schedule_at, attempts FROM tasks")
    for t in left:
        if t["schedule_at"] <= now + 60:
            problems.append(f"task {t['name']} ({t['kind']}) never finished: {dict(t)}")
    names = {r[0] for r in rows(tasks, "SELECT name FROM task_names")}
    missing = {r[0] for r in rows(tasks, "SELECT name FROM tasks")} - names
    problems += [f"queued task {n} has no remembered name" for n in missing]
    # Case outboxes: a task decided but never queued would sit here.
    store = SqliteCaseStore(data / "sapa.db")
    for case in store.with_outbox(limit=10_000):
        problems.append(f"case {case.id} still holds tasks never queued: {case.outbox}")

    sim = data / "wa_simulator.db"
    by_wa = {r.wa_id: r for r in residents}
    for r in rows(sim, "SELECT * FROM messages WHERE direction = 'in'"):
        if r["webhook_status"] is None or not 200 <= r["webhook_status"] < 300:
            problems.append(f"inbound {r['wamid']} never acknowledged: {r['error']}")
        elif not store.message_exists(r["wamid"]):
            problems.append(f"inbound {r['wamid']} acknowledged but not stored")
    sent = rows(sim, "SELECT wamid, wa_id, type, text FROM messages WHERE direction = 'out'")
    sent_by_wa: dict[str, list[str]] = {}
    for r in sent:
        sent_by_wa.setdefault(r["wa_id"], []).append(r["wamid"])

    for resident in residents:
        if resident.case_id is None:
            continue
        case = store.get(resident.case_id)
        events = Counter(e.event for e in store.events(case.id))
        out = [m for m in store.messages(case.id) if m.direction == "out"]
        recorded = {str(m.data.get("wamid")) for m in out}
        # Every message the phone received was recorded by SAPA, under one id: none twice.
        for wamid in sent_by_wa.get(resident.wa_id, []):
            if wamid not in recorded:
                problems.append(f"case {case.reg_no}: sent {wamid} but never recorded it")
        kinds = Counter(str(m.data.get("kind") or m.type) for m in out)
        for kind, n in kinds.items():
            if (kind in ONCE_KINDS or kind == "document") and n > 1:
                problems.append(f"case {case.reg_no}: {n} × {kind}")
        for event in ("greet", "send_link", "submit_form", "check", "sign", "deliver"):
            if events[event] > 1:
                problems.append(f"case {case.reg_no}: {events[event]} × {event} in the audit")
        if case.signed is not None:
            pdf = (data / "blobs" / case.signed.key).read_bytes()
            if (n := signatures_in(pdf)) != 1:
                problems.append(f"case {case.reg_no}: {n} signatures in the signed PDF")
            files = list((data / "blobs" / "cases" / case.id / "signed").glob("*.pdf"))
            if len(files) != 1:
                problems.append(f"case {case.reg_no}: {len(files)} signed PDFs stored")
        if resident.done and (case.state != "delivered" or kinds["document"] != 1):
            problems.append(f"case {case.reg_no}: done but {case.state}, {kinds}")
    for wa_id in sent_by_wa:
        if wa_id not in by_wa:
            problems.append(f"messages sent to {wa_id}, who never wrote")
    return problems
