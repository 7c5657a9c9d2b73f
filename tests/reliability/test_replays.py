"""Replays: every webhook (messages and statuses), every task delivery and the e-sign callback
delivered 5 more times at random delays leave the same final state as one delivery.

Two runs of the demo path on fresh stacks: one plain, one where the simulator posts each
webhook again and the queue worker delivers each task again REPLAYS times (at random delays,
so replays overlap the first delivery and each other), and the signed document's callback is
posted REPLAYS times. Their canonical snapshots (the case, its conversation, its audit trail
without times and ids, the messages the resident's phone received) must be equal.

Knobs: SAPA_REPLAYS (default 5), SAPA_REPLAY_MAX_DELAY (seconds, default 1.5),
SAPA_REPLAY_SEED (default 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sapa.dev import demo
from sapa.dev.driver import Office
from sapa.dev.localserver import LocalStack
from sapa.dev.simulator import EXTENSION, WaSimulator
from sapa.settings import load_settings
from tests.reliability.harness import env_int

pytestmark = pytest.mark.e2e

REPLAYS = env_int("SAPA_REPLAYS", 5)
MAX_DELAY = float(os.environ.get("SAPA_REPLAY_MAX_DELAY") or 1.5)
SEED = env_int("SAPA_REPLAY_SEED", 7)


class Replayer:
    """Schedules REPLAYS copies of each delivery at random delays and counts them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def later(self, what: str, fn: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # reported by the test
                with self.lock:
                    self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
            with self.lock:
                self.counts[what] += 1

        with self.lock:
            for _ in range(REPLAYS):
                t = threading.Timer(self.rng.uniform(0.0, MAX_DELAY), run)
                t.daemon = True
                self.timers.append(t)
                t.start()

    def join(self) -> None:
        while True:
            with self.lock:
                pending = [t for t in self.timers if t.is_alive()]
            if not pending:
                return
            for t in pending:
                t.join(timeout=30)


def install_replays(stack: LocalStack, replayer: Replayer) -> None:
    sim: WaSimulator = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
    post = sim.post_webhook

    def post_and_replay(payload: dict[str, Any]) -> tuple[int | None, str | None]:
        value = payload["entry"][0]["changes"][0]["value"]
        what = "webhook:status" if "statuses" in value else "webhook:message"
        replayer.later(what, lambda: post(payload))
        return post(payload)

    sim.post_webhook = post_and_replay  # type: ignore[method-assign]
    worker = stack.worker
    deliver = worker.deliver

    def deliver_and_replay(task: Any, session: Any = None) -> bool:
        # The queue ignores the copies' complete/fail (the task is gone or leased again).
        replayer.later(f"task:{task.kind}", lambda: deliver(task))
        return bool(deliver(task, session))

    worker.deliver = deliver_and_replay


def esign_callback_body(stack: LocalStack, case_id: str) -> bytes:
    c = stack.c
    case = c.store.get(case_id)
    assert case.signed is not None and case.signature_id
    sign = next(e for e in c.store.events(case_id) if e.event == "sign")
    return json.dumps(
        {
            "case_id": case_id,
            "document_id": sign.detail["document_id"],
            "signature_id": case.signature_id,
            "signed_at": sign.detail["signed_at"],
            "pdf_base64": base64.b64encode(c.blobs.get(case.signed.key)).decode(),
            "actor": {"id": sign.actor_id, "role": sign.role},
        }
    ).encode()


def post_callback(stack: LocalStack, body: bytes) -> int:
    secret = stack.c.settings.secret("esign_callback_secret").encode()
    mac = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = requests.post(
        f"{stack.base_url}/esign/callback",
        data=body,
        headers={"Content-Type": "application/json", "X-Sapa-Signature": mac},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": False}  # the document was accepted once, long ago
    return r.status_code


def settle(stack: LocalStack, replayer: Replayer | None) -> None:
    sim: WaSimulator = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if replayer is not None:
            replayer.join()
        owed = sim.store.undelivered(0)
        replaying = replayer is not None and any(t.is_alive() for t in replayer.timers)
        if stack.c.queue.pending() == 0 and not owed and not replaying:  # type: ignore[attr-defined]
            return
        time.sleep(0.2)
    raise AssertionError("the stack did not settle in 90 s")


def snapshot(stack: LocalStack, case_id: str, wa_id: str) -> dict[str, Any]:
    """The case as staff and the resident see it, with what differs between any two runs (ids,
    times, tokens, hashes of time-stamped signatures) replaced by placeholders."""
    c = stack.c
    case = c.store.get(case_id)
    sim: WaSimulator = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
    phone = sim.store.conversation(demo.PHONE_NUMBER_ID, wa_id)
    events = c.store.events(case_id)
    state = case.model_dump(mode="json", exclude={"version", "updated_at"})
    if state.get("signed"):
        state["signed"].pop("size")  # a signature's size varies with its time stamp
    raw = {
        "case": state,
        # Transitions in their order; notes (a step's state unchanged) as a multiset, since a
        # task's note and an officer's action may interleave either way in any run.
        "transitions": [
            e.model_dump(mode="json", exclude={"at", "seq"})
            for e in events
            if e.from_state != e.to_state
        ],
        "notes": sorted(
            (
                e.model_dump(mode="json", exclude={"at", "seq", "from_state", "to_state"})
                for e in events
                if e.from_state == e.to_state
            ),
            key=lambda d: json.dumps(d, sort_keys=True),
        ),
        "messages": [
            {"direction": m.direction, "type": m.type, "body": m.body, "status": m.status}
            | {"kind": m.data.get("kind")}
            for m in c.store.messages(case_id)
        ],
        "phone": [(r["direction"], r["type"], r["text"], r["status"]) for r in phone],
        "phone_counts": Counter(f"{r['direction']}:{r['type']}" for r in phone),
        "dead_letters": [(d.kind, d.last_error) for d in c.queue.dead_letters()],  # type: ignore[attr-defined]
    }
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    marks = (
        (stack.base_url, "<base>"),
        (case_id, "<case>"),
        (case.reg_no, "<reg>"),
        (wa_id, "<wa>"),
    )
    for value, mark in marks:
        text = text.replace(value, mark)
    text = re.sub(r"/guestbook/([fs])/[^\s\"\\]+", r"/guestbook/\1/<token>", text)
    text = re.sub(r"wamid\.[A-Za-z0-9_=-]+", "<wamid>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r"\b\d{1,2}/\d{1,2} \d\d:\d\d\b|\b\d\d:\d\d(:\d\d)?\b", "<time>", text)
    text = re.sub(r"\b[0-9a-f]{16,64}\b", "<hex>", text)
    text = re.sub(r"local-[0-9a-f]+", "<sig>", text)
    text = re.sub(r"\b\d{15,16}\b", "<media>", text)
    snap = dict(json.loads(text))
    snap["notes"].sort(key=lambda d: json.dumps(d, sort_keys=True))  # now without ids
    return snap


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Callable[[str], LocalStack]]:
    stacks: list[LocalStack] = []

    def make(name: str) -> LocalStack:
        s = LocalStack(load_settings(sapa_data_dir=tmp_path / name))
        s.start()
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        s.stop()


def run_demo(stack: LocalStack) -> tuple[str, str]:
    tl = demo.run(stack.base_url, out=lambda _: None, office=Office.of(stack.c))
    case = stack.c.store.get(tl["case_id"])
    return case.id, case.wa_id


@pytest.mark.timeout(240)
def test_every_delivery_replayed_gives_the_same_state_as_once(
    fresh_stack: Callable[[str], LocalStack],
) -> None:
    # GIVEN the demo path run once, with every delivery made once
    once = fresh_stack("once")
    case_id, wa_id = run_demo(once)
    settle(once, None)
    expected = snapshot(once, case_id, wa_id)
    once.stop()

    # WHEN the same path runs with every webhook, task and the e-sign callback delivered
    # REPLAYS more times at random delays
    replayer = Replayer(SEED)
    again = fresh_stack("replayed")
    install_replays(again, replayer)
    case_id, wa_id = run_demo(again)
    body = esign_callback_body(again, case_id)
    replayer.later("esign_callback", lambda: post_callback(again, body))
    settle(again, replayer)
    got = snapshot(again, case_id, wa_id)

    # THEN every kind of delivery was replayed, and the final state is the same
    assert not replayer.errors, replayer.errors
    for kind in ("webhook:message", "webhook:status", "esign_callback"):
        assert replayer.counts[kind] >= REPLAYS, replayer.counts
    for kind in ("notify", "precheck", "siak_handoff", "esign_request", "deliver"):
        assert replayer.counts[f"task:{kind}"] >= REPLAYS, replayer.counts
    print(dict(replayer.counts))
    differences = [
        f"{part}:\n{diff(expected[part], got[part])}"
        for part in expected
        if got[part] != expected[part]
    ]
    assert not differences, "\n".join(differences)


def diff(a: Any, b: Any) -> str:
    import difflib

    lines = [json.dumps(x, indent=1, sort_keys=True).splitlines() for x in (a, b)]
    return "\n".join(difflib.unified_diff(*lines, "once", "replayed", lineterm="", n=2))
