"""Provider outages: the WhatsApp API failing (500, 429, a call that hangs), the signer down
(the local signer, and the BSrE fake answering 5xx/429), the BlobStore refusing writes, each
for a while in the middle of a request. The queue retries with backoff, staff see the step
that waits, nothing is dropped, and the request completes once the provider is back, with
every message, signature and delivery done once.

Knob: SAPA_OUTAGE_SECONDS (how long each outage lasts, default 3)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.dev.simulator import EXTENSION, WaSimulator
from sapa.domain.errors import TransientError
from sapa.ports import BlobRef, SignedPdf, SignRequest
from sapa.settings import load_settings
from tests.contract.bsre_fake import PASSPHRASE, FakeBsre
from tests.reliability.harness import KECAMATAN, OFFICE, Http, Officer, Resident, signatures_in

pytestmark = pytest.mark.e2e

OUTAGE = float(os.environ.get("SAPA_OUTAGE_SECONDS") or 3.0)


@dataclass
class Endpoint:
    """What `harness.Http` needs of a server: its base URL and whether it is up (always)."""

    base: str
    up: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.up.set()


class Outage:
    """A provider down for `seconds` from the first call that reaches it."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.started: float | None = None
        self.failures = 0
        self.successes = 0
        self.lock = threading.Lock()

    def check(self) -> None:
        with self.lock:
            now = time.monotonic()
            if self.started is None:
                self.started = now
            if now - self.started < self.seconds:
                self.failures += 1
                raise TransientError(f"{self.what} sedang gangguan (uji)")
            self.successes += 1

    @property
    def over(self) -> bool:
        return self.started is not None and time.monotonic() - self.started >= self.seconds


class DownSigner:
    def __init__(self, real: Any, outage: Outage) -> None:
        self.real, self.outage = real, outage

    def sign(self, request: SignRequest) -> SignedPdf:
        self.outage.check()
        return self.real.sign(request)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class DownBlobs:
    """A BlobStore whose writes (of keys containing `part`) fail during the outage."""

    def __init__(self, real: Any, outage: Outage, part: str = "") -> None:
        self.real, self.outage, self.part = real, outage, part

    def put(self, key: str, data: bytes, content_type: str) -> BlobRef:
        if self.part in key:
            self.outage.check()
        return self.real.put(key, data, content_type)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    stacks: list[LocalStack] = []

    def make(**settings: Any) -> LocalStack:
        s = LocalStack(
            load_settings(
                sapa_data_dir=tmp_path / "var",
                task_min_backoff_seconds=0.2,
                task_max_backoff_seconds=1.0,
                task_max_attempts=40,
                **settings,
            )
        )
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        s.stop()


def resident(stack: LocalStack, passphrase: str = "") -> tuple[Resident, threading.Thread]:
    http = Http(Endpoint(stack.base_url), time.monotonic() + 120)  # type: ignore[arg-type]
    r = Resident(http=http, wa_id="6281355501234", name="Daeng", passphrase=passphrase)
    t = threading.Thread(target=r.run, daemon=True)
    t.start()
    return r, t


def attempts(stack: LocalStack) -> Counter[tuple[str, bool]]:
    """Count the worker's deliveries by (kind, succeeded) from now on."""
    seen: Counter[tuple[str, bool]] = Counter()
    deliver = stack.worker.deliver

    def counting(task: Any, session: Any = None) -> bool:
        ok = bool(deliver(task, session))
        seen[(task.kind, ok)] += 1
        return ok

    stack.worker.deliver = counting
    return seen


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def page_with(officer: Officer, r: Resident, event: str) -> dict[str, Any] | None:
    """The case page as `officer` sees it, once its audit trail shows `event`."""
    page: dict[str, Any] = officer.get(f"/cases/{r.case_id}")
    return page if event in [e["event"] for e in page["events"]] else None


def approved(stack: LocalStack, r: Resident, case_id: str) -> bool:
    """The case is approved; a resident's driver that gave up says why at once."""
    if r.error is not None:
        raise AssertionError(f"the resident's driver stopped: {r.error}: {r.log[-6:]}")
    return stack.c.store.get(case_id).state == "approved"


def finish(stack: LocalStack, r: Resident, t: threading.Thread) -> None:
    t.join(timeout=150)
    assert r.done, f"{r.error}: {r.log[-6:]}"
    wait_for("the queue to drain", lambda: stack.c.queue.pending() == 0)  # type: ignore[attr-defined]
    assert stack.c.queue.dead_letters() == []  # type: ignore[attr-defined]


def assert_once_each(stack: LocalStack, r: Resident) -> None:
    """One guest-book link, one 'received', one 'contacted', one document and one survey
    invitation on the phone; one signature in the delivered PDF; one sign and one deliver in
    the audit trail."""
    assert r.case_id is not None
    c = stack.c
    case_id = r.case_id

    def invited() -> bool:  # it follows the document's "delivered" status, on its own task
        return any(m.data.get("kind") == "survey_invite" for m in c.store.messages(case_id))

    wait_for("the survey invitation", invited)
    wait_for("the queue to drain", lambda: c.queue.pending() == 0)  # type: ignore[attr-defined]
    sim: WaSimulator = stack.app.passthrough.extensions[EXTENSION]  # type: ignore[union-attr]
    phone = [m for m in sim.store.conversation(demo.PHONE_NUMBER_ID, r.wa_id)]
    out = [m for m in c.store.messages(r.case_id) if m.direction == "out"]
    kinds = Counter(str(m.data.get("kind") or m.type) for m in out)
    trail = [(e.event, e.detail) for e in c.store.events(r.case_id) if e.event != "claim"]
    assert kinds == Counter(
        {"guestbook_link": 1, "form_received": 1, "contacted": 1, "document": 1, "survey_invite": 1}
    ), f"{kinds}\n{trail}"
    sent = [m for m in phone if m["direction"] == "out"]
    assert len(sent) == len(out) == 5
    assert {m["wamid"] for m in sent} == {m.data["wamid"] for m in out}
    events = Counter(e.event for e in c.store.events(r.case_id))
    assert events["sign"] == 1 and events["deliver"] == 1 and events["send_link"] == 1
    case = c.store.get(r.case_id)
    assert case.state == "delivered" and case.signed is not None
    assert signatures_in(c.blobs.get(case.signed.key)) == 1


def test_whatsapp_api_failing_then_hanging_is_retried_and_sends_each_message_once(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack()
    stack.start()
    seen = attempts(stack)
    control = f"{stack.base_url}/sim/control/faults"

    def fault_state() -> dict[str, Any]:
        return dict(requests.get(control, timeout=5).json())

    # GIVEN the Graph API answers 500 for a while
    requests.post(control, json={"status": 500, "seconds": OUTAGE}, timeout=5).raise_for_status()
    # WHEN a resident greets and goes through the whole path
    r, t = resident(stack)
    case = wait_for("the case", lambda: stack.c.store.find_open(KECAMATAN, r.wa_id))
    # THEN while it is down, staff see on the case that the link waits for WhatsApp
    loket = Officer(r.http, OFFICE.officer("loket", KECAMATAN))

    def delayed() -> dict[str, Any] | None:
        page = loket.get(f"/cases/{case.id}")
        notes = [e for e in page["events"] if e["event"] == "message_delayed"]
        return page if notes and notes[0]["detail"]["kind"] == "guestbook_link" else None

    page = wait_for("the delay on the case page", delayed, timeout=OUTAGE)
    assert not [m for m in page["messages"] if m["direction"] == "out"]
    # AND once it is back the link goes out
    wait_for("the link", r.link, timeout=30)
    # AND when the signed document goes out, the first call hangs past the client's timeout
    # and then the API throttles (429) for a while
    wait_for("approval", lambda: approved(stack, r, case.id), timeout=90)
    hang = {"status": 503, "count": 1, "delay": 11}
    requests.post(control, json=hang, timeout=5).raise_for_status()
    wait_for("the hanging call", lambda: fault_state()["remaining"] == 0, timeout=60)
    throttle = {"status": 429, "seconds": OUTAGE}
    requests.post(control, json=throttle, timeout=5).raise_for_status()
    finish(stack, r, t)
    assert seen[("notify", False)] >= 2, seen  # the link was retried through the outage
    assert seen[("deliver", False)] >= 2, seen  # the hang, then at least one 429
    assert fault_state()["status"] == 0
    assert_once_each(stack, r)


def test_local_signer_down_is_retried_and_signs_once(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack()
    outage = Outage(OUTAGE, "penanda tangan")
    stack.c.__dict__["signer"] = DownSigner(stack.c.signer, outage)
    stack.start()
    seen = attempts(stack)
    r, t = resident(stack)
    # WHEN the head of office signs while the signer is down
    wait_for("the signer to fail", lambda: outage.failures >= 1, timeout=90)
    # THEN the head of office sees the signature requested and pending (no second button)
    kadis = Officer(r.http, OFFICE.officer("kadis", KECAMATAN))
    page = wait_for("the delay on the case page", lambda: page_with(kadis, r, "sign_delayed"))
    assert page["case"]["state"] == "approved"
    assert "sign_requested" in [e["event"] for e in page["events"]]
    assert "sign" not in page["allowed"]  # no second request while the first one waits
    finish(stack, r, t)
    assert outage.failures >= 2 and outage.successes == 1, vars(outage)
    assert seen[("esign_request", False)] >= 2 and seen[("esign_request", True)] >= 1
    assert_once_each(stack, r)


def test_bsre_answering_5xx_then_429_is_retried_and_signs_once(
    make_stack: Callable[..., LocalStack],
) -> None:
    with FakeBsre() as bsre:
        stack = make_stack(
            signer="bsre",
            bsre_base_url=bsre.base_url,
            bsre_username=bsre.username,
            bsre_password=bsre.password,
            bsre_nik=bsre.nik,
            bsre_api="v1",
            bsre_timeout_seconds=10,
        )
        stack.start()
        bsre.mode = "http_500"
        r, t = resident(stack, passphrase=PASSPHRASE)
        wait_for("BSrE to refuse", lambda: any(x.status == 500 for x in bsre.received), 90)
        kadis = Officer(r.http, OFFICE.officer("kadis", KECAMATAN))
        page = kadis.get(f"/cases/{r.case_id}")
        assert page["case"]["state"] == "approved" and "sign" not in page["allowed"]
        time.sleep(OUTAGE / 2)  # the outage lasts; the queue keeps retrying with backoff
        bsre.mode = "http_429"
        wait_for("BSrE to throttle", lambda: any(x.status == 429 for x in bsre.received), 30)
        time.sleep(OUTAGE / 2)
        bsre.mode = None
        finish(stack, r, t)
        signed = Counter(x.status for x in bsre.received if x.api == "v1")
        assert signed[200] == 1, signed  # one signature, however many refusals before
        # the outage answered every call (the certificate status is asked first)
        statuses = Counter(x.status for x in bsre.received)
        assert statuses[500] >= 1 and statuses[429] >= 1, statuses
        assert all(not x.passphrase_present or x.passphrase_ok for x in bsre.received)
        assert_once_each(stack, r)


def test_blob_store_refusing_writes_is_retried_and_nothing_is_lost(
    make_stack: Callable[..., LocalStack],
) -> None:
    stack = make_stack()
    uploads = Outage(OUTAGE, "penyimpanan berkas")
    signed = Outage(OUTAGE, "penyimpanan berkas")
    stack.c.__dict__["blobs"] = DownBlobs(
        DownBlobs(stack.c.blobs, uploads, "cases/"), signed, "/signed/"
    )
    stack.start()
    seen = attempts(stack)
    # WHEN the store refuses writes as the guest book is sent, and again as the signed
    # document is stored
    r, t = resident(stack)
    wait_for("the signed document's write to fail", lambda: signed.failures >= 1, timeout=90)
    kadis = Officer(r.http, OFFICE.officer("kadis", KECAMATAN))
    page = kadis.get(f"/cases/{r.case_id}")
    assert page["case"]["state"] == "approved" and "sign" not in page["allowed"]
    finish(stack, r, t)
    # THEN the resident's form went through after the outage, every document was kept, the
    # signature was stored once and delivered once
    assert uploads.failures >= 1 and signed.failures >= 1
    assert seen[("esign_request", False)] >= 1
    case = stack.c.store.get(r.case_id)  # type: ignore[arg-type]
    assert {d.requirement for d in case.documents} >= {"kk_lama", "buku_nikah"}
    assert case.handoff is not None
    stored = list(
        (stack.c.settings.sapa_data_dir / "blobs" / "cases" / case.id / "signed").glob("*.pdf")
    )
    assert len(stored) == 1
    assert_once_each(stack, r)
