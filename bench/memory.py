"""Benchmark: peak memory (RSS) of one function instance serving each kind of request.

SUT: for each entry point a fresh `functions-framework` instance (`bench.instances`), sharing a
data directory with a LocalStack (worker off) that plays everything else. One case is driven
through all eight steps with the work of each function sent to its own instance: the guest book
is submitted with a 10 MB photo (12 megapixels, as a phone takes it), the SIAK draft has 20
pages and the local PAdES signer signs it, the head of division decides through `approval`,
the resident sends a photo on WhatsApp (`media_store`) and a second resident asks to cancel
(`command`). Figure: the kernel's high-water mark of resident memory (VmHWM) of the worker
process after its requests, which includes everything the master loaded before forking.

FLOOR: the bare functions-framework function `bench/floor.py` after its first request, started
and measured the same way. Target: ≤ 180 MiB for each instance (absolute).
"""

from __future__ import annotations

import io
import secrets as pysecrets
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.case import CaseDesk, CaseDriver, simulator_of
from bench.harness import Context, Row, benchmark, check, vs_floor
from bench.instances import FLOOR_SOURCE, FunctionInstance
from bench.webhook import text_payload
from sapa.adapters.embedded.sqlite_queue import LeasedTask, SqliteTaskQueue
from sapa.adapters.embedded.task_worker import TaskWorker
from sapa.adapters.meta_webhook import sign_body
from sapa.dev.driver import DriveError, Officer, StepInput
from sapa.dev.localserver import TASK_KINDS, LocalStack
from sapa.services.signing import document_id
from sapa.settings import load_settings

MIB = 1024 * 1024
TARGET_MIB = 180.0
PHOTO_BYTES = 10_000_000
QUICK_ENTRIES = ("wa_webhook", "guestbook")


def phone_photo(size: int, width: int = 4000, height: int = 3000) -> bytes:
    """A JPEG of `size` bytes at `width`×`height` (a phone camera's 12 megapixels): detailed
    content so the compressed data is genuinely large, padded with a comment segment to size."""
    from PIL import Image

    rng = pysecrets.token_bytes
    tile = Image.frombytes("RGB", (500, 500), rng(500 * 500 * 3))
    img = Image.new("RGB", (width, height))
    for x in range(0, width, 500):
        for y in range(0, height, 500):
            img.paste(tile, (x, y))
    for quality in (92, 85, 75, 60, 45, 30):
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
        data = out.getvalue()
        if len(data) <= size:
            break
    if len(data) > size:
        raise RuntimeError(f"cannot make a {size}-byte JPEG at {width}×{height}")
    # Pad with COM segments (≤ 65533 bytes of payload each) right after SOI.
    pad = size - len(data)
    segments = b""
    while pad > 4:
        n = min(pad - 4, 65533)
        segments += b"\xff\xfe" + (n + 2).to_bytes(2, "big") + b"\x00" * n
        pad -= n + 4
    return data[:2] + segments + data[2:]


class Instances:
    """Function instances spawned on first use, kept until the end, measured then."""

    def __init__(self, env: dict[str, str], token: str, queue: SqliteTaskQueue) -> None:
        self.env = env
        self.queue = queue
        self.token = token
        self.live: dict[str, FunctionInstance] = {}
        self.statuses: dict[str, list[int]] = {}
        self.requests: dict[str, list[str]] = {}

    def get(self, name: str) -> FunctionInstance:
        if name not in self.live:
            source = FLOOR_SOURCE if name == "floor" else None
            inst = (
                FunctionInstance("floor", self.env, source=source)
                if source
                else FunctionInstance(name, self.env)
            )
            # ready when it answers anything (an unauthenticated GET: every function refuses
            # or answers it cheaply, and nothing is imported for it that a request would not)
            inst.first_response(lambda b, s: s.get(b + "/bench-ready", timeout=30))
            self.live[name] = inst
        return self.live[name]

    def record(self, name: str, what: str, status: int) -> None:
        self.statuses.setdefault(name, []).append(status)
        self.requests.setdefault(name, []).append(f"{what} → {status}")

    def route(self, kind: str) -> Any:
        def deliver(task: LeasedTask) -> bool:
            inst = self.get(kind)
            worker = TaskWorker(
                self.queue, inst.base_url, self.token, request_timeout=120, lease_seconds=180
            )
            ok = worker.deliver(task)
            self.record(kind, f"task {task.kind}", 200 if ok else 500)
            return ok

        return deliver

    def stop(self) -> None:
        for inst in self.live.values():
            inst.stop()


class MemoryDesk(CaseDesk):
    """The main case's officers: tasks drained (up to 30 s) after each step; with `inst`, the
    head of division approves in the approval function's own instance."""

    def __init__(self, driver: CaseDriver, inst: Instances | None) -> None:
        super().__init__(driver, settle=30, opens_case=False)
        self.inst = inst

    def act(self, email: str, case_id: str, action: str, given: StepInput) -> bool:
        if action != "approve" or self.inst is None:
            return super().act(email, case_id, action, given)
        who = self.officer(email)
        ap = self.inst.get("approval")
        r = who.http.post(
            f"{ap.base_url}/{case_id}", data={"csrf": who.csrf, "decision": "approve"}
        )
        self.inst.record("approval", "POST approve (kabid session)", r.status_code)
        who.checked(r, "approve in the approval function")
        return True


def measure(ctx: Context, quick: bool) -> list[Row]:
    entries = (
        set(QUICK_ENTRIES)
        if quick
        else {
            "wa_webhook",
            "guestbook",
            "staff",
            "verify",
            "approval",
            "esign_callback",
            "retention_sweep",
            "sla_sweep",
            *TASK_KINDS,
        }
    )
    size, width, height = (2_000_000, 1600, 1200) if quick else (PHOTO_BYTES, 4000, 3000)
    ctx.log(f"a {size / 1e6:.0f} MB JPEG of {width}×{height}")
    photo = phone_photo(size, width, height)
    peaks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="sapa-bench-mem-") as tmp:
        stack = LocalStack(load_settings(sapa_data_dir=Path(tmp)))
        stack.start(worker=False)
        simulator_of(stack).status_delay = 0.0
        s = stack.c.settings
        env = {
            "SAPA_DATA_DIR": tmp,
            "PUBLIC_BASE_URL": stack.base_url,
            "WA_APP_SECRET": s.secret("wa_app_secret"),
            "LOG_LEVEL": "WARNING",
        }
        queue = stack.c.queue
        assert isinstance(queue, SqliteTaskQueue)
        inst = Instances(env, s.secret("task_token"), queue)
        driver = CaseDriver(stack, draft_pages=1 if quick else 20)
        http = requests.Session()
        http.trust_env = False
        try:
            for kind in TASK_KINDS:
                if kind in entries:
                    driver.routes[kind] = inst.route(kind)
            # the floor, measured like the others
            fl = inst.get("floor")
            raw = text_payload("wamid.mem-floor", 1, "Halo", int(time.time()))
            r = http.post(
                fl.base_url,
                data=raw,
                headers={"X-Hub-Signature-256": sign_body(s.secret("wa_app_secret"), raw)},
            )
            inst.record("floor", "POST signed text", r.status_code)
            if "wa_webhook" in entries:
                wh = inst.get("wa_webhook")
                raw = text_payload(
                    f"wamid.mem-{pysecrets.token_hex(4)}", 424242, "Halo", int(time.time())
                )
                r = http.post(
                    wh.base_url,
                    data=raw,
                    headers={"X-Hub-Signature-256": sign_body(s.secret("wa_app_secret"), raw)},
                )
                inst.record("wa_webhook", "POST signed greeting", r.status_code)
                driver.drain()
            # the main case: steps 1–8
            kec = "730608"
            wa_id = "62815" + "".join(pysecrets.choice("0123456789") for _ in range(8))
            driver.say(wa_id, kec, "Assalamualaikum, mau urus KK")
            driver.drain()
            url = driver.link(wa_id, kec)
            case_id = driver.case_id_of(url)
            if "media_store" in entries:
                driver.send_photo(wa_id, kec, _small_jpeg(), "kk.jpg")
                driver.drain()
            if "guestbook" in entries:
                gb = inst.get("guestbook")
                path = "/" + url.split("/guestbook/", 1)[1]
                r = http.post(
                    gb.base_url + path,
                    data=driver.form(kec),
                    headers={"Accept": "application/json"},
                    files={
                        "doc_kk_lama": ("kk.jpg", io.BytesIO(photo), "image/jpeg"),
                        "doc_buku_nikah": (
                            "nikah.pdf",
                            io.BytesIO(driver.nikah_pdf),
                            "application/pdf",
                        ),
                    },
                    timeout=120,
                )
                inst.record(
                    "guestbook",
                    f"POST the form with a {len(photo) / 1e6:.1f} MB photo",
                    r.status_code,
                )
            else:
                driver.submit(url, kec)
            driver.drain()
            desk = MemoryDesk(driver, inst if "approval" in entries else None)
            try:
                driver.walk(case_id, desk)
            except DriveError as exc:
                ctx.log(f"the case did not get through: {exc}")
            delivered = stack.c.store.get(case_id).state == "delivered"
            case = stack.c.store.get(case_id)
            if "staff" in entries:
                st = inst.get("staff")
                officer = Officer(st.base_url, driver.loket(kec).email)  # the instance's root
                officer.login()
                r = officer.http.get(
                    f"{st.base_url}/cases/{case_id}", headers={"Accept": "text/html"}
                )
                inst.record("staff", "GET the case page (HTML)", r.status_code)
                officer.close()
            if "verify" in entries and case.signed is not None:
                ve = inst.get("verify")
                signed = stack.c.blobs.get(case.signed.key)
                r = http.post(
                    f"{ve.base_url}/d/{document_id(case)}",
                    files={"file": ("ttd.pdf", io.BytesIO(signed), "application/pdf")},
                )
                inst.record("verify", "POST the signed PDF to check it", r.status_code)
            if "esign_callback" in entries:
                cb = inst.get("esign_callback")
                r = http.post(cb.base_url, json={"id": "x"})
                inst.record("esign_callback", "POST without signature", r.status_code)
            for job in ("retention_sweep", "sla_sweep"):
                if job in entries:
                    j = inst.get(job)
                    r = http.post(
                        j.base_url,
                        headers={"Authorization": f"Bearer {s.secret('task_token')}"},
                        timeout=120,
                    )
                    inst.record(job, "POST scheduled run", r.status_code)
            if "command" in entries:
                other = "62816" + "".join(pysecrets.choice("0123456789") for _ in range(8))
                driver.say(other, "730602", "Halo")
                driver.say(other, "730602", "BATAL")
                driver.drain()
            for name, fi in inst.live.items():
                peaks[name] = fi.peak_rss()
        finally:
            http.close()
            driver.close()
            inst.stop()
            stack.stop()
    floor = peaks.pop("floor") / MIB
    rows = [
        vs_floor(
            f"peak RSS {name}", peaks[name] / MIB, floor, "MiB", target=TARGET_MIB, absolute=True
        )
        for name in sorted(peaks)
    ]
    missing = sorted(entries - set(peaks))
    bad = {n: st for n, st in inst.statuses.items() if any(x >= 500 for x in st)}
    rows.append(check("instances not measured", len(missing)))
    rows.append(check("requests answered 5xx", sum(1 for v in bad.values() for x in v if x >= 500)))
    if not quick:
        rows.append(check("memory case not delivered", 0 if delivered else 1))
    ctx.details["memory"] = {
        "floor_mib": round(floor, 1),
        "peak_mib": {k: round(v / MIB, 1) for k, v in sorted(peaks.items())},
        "requests": inst.requests,
        "missing": missing,
        "photo_bytes": len(photo),
    }
    ctx.note(
        "Peak RSS = VmHWM of the functions-framework worker (gunicorn, 1 worker, THREADS=8) after"
        f" its requests; one instance per entry point; the guest book got a {len(photo) / 1e6:.1f}"
        f" MB JPEG of {width}×{height}, esign_request signed a"
        f" {'1' if quick else '20'}-page draft with the local PAdES signer; target ≤ 180 MiB each."
        " Requests per instance in the JSON (esign_callback: unauthenticated, 401)."
    )
    return rows


def _small_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1200, 1600), (200, 180, 150)).save(out, "JPEG", quality=85)
    return out.getvalue()


@benchmark(
    "memory",
    "peak RSS of one function instance per kind of request vs a bare functions-framework process",
)
def memory(ctx: Context) -> list[Row]:
    return measure(ctx, ctx.quick)
