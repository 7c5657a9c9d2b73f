"""The embedded stack as a real process that can be killed, and residents and officers who keep
going through it: the reliability tests' shared tools."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sapa.adapters.pdf import simple_pdf
from sapa.dev import demo
from sapa.dev.driver import HttpDesk, Office, walk
from sapa.dev.driver import Officer as StaffOfficer

# The office the local server runs (its SOP and staff file), and the kecamatan of the demo's
# service number, where every resident here writes.
OFFICE = Office.local()
KECAMATAN = demo.KECAMATAN
DOWN = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


class Stopped(RuntimeError):
    """The run's deadline passed: the driver gives up and the test reports where it stood."""


class Server:
    """`python -m sapa.dev.localserver` on a fixed port and data directory, started again after
    every kill on the same port and data (the log of every run is kept in one file)."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "SAPA_DATA_DIR": str(data_dir),
            "PORT": str(port),
            "PUBLIC_BASE_URL": self.base,
            "LOG_LEVEL": "WARNING",
            "TASK_MIN_BACKOFF_SECONDS": "0.2",
            "TASK_MAX_BACKOFF_SECONDS": "2",
            "TASK_MAX_ATTEMPTS": "50",
            "GUESTBOOK_RATE_PER_MINUTE": "100000",
            "WA_SENDER_RATE_PER_MINUTE": "100000",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.own_group = False  # started as its own process group (a terminal's Ctrl+C)
        self.starts = 0
        self.kills = 0
        self.up = threading.Event()

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.starts + 1} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sapa.dev.localserver", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_group,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    self.up.set()
                    return
            except DOWN:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer /healthz in {timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a power cut of the process."""
        assert self.proc is not None
        self.up.clear()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        """A clean stop (SIGTERM, then SIGKILL after 15 s), by PID."""
        self.up.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def queue_cli(self, *args: str) -> str:
        """The operator's view: `python -m sapa.adapters.embedded.queue_cli ARGS`."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "sapa.adapters.embedded.queue_cli",
                "--db",
                str(self.data_dir / "tasks.db"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout + out.stderr


class Http:
    """HTTP calls that outlast a server restart: a refused connection or a timeout is tried
    again (after the server answers again) until `deadline`; answers are returned as they are."""

    def __init__(self, server: Server, deadline: float) -> None:
        self.server = server
        self.deadline = deadline
        self.session = requests.Session()
        self.session.trust_env = False

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise Stopped("deadline passed")

    def call(self, method: str, path: str, *, once: bool = False, **kw: Any) -> Any:
        """One request; with `once`, a connection failure is returned as None instead of being
        retried (the caller must find out itself whether the request took effect)."""
        kw.setdefault("timeout", 20)
        url = path if path.startswith("http") else f"{self.server.base}{path}"
        while True:
            self.check_deadline()
            try:
                return self.session.request(method, url, **kw)
            except DOWN:
                if once:
                    return None
                self.server.up.wait(timeout=1.0)
                time.sleep(0.05)
                for value in kw.values():  # rewind uploads for the next try
                    if isinstance(value, dict):
                        for part in value.values():
                            if isinstance(part, tuple) and hasattr(part[1], "seek"):
                                part[1].seek(0)


class Officer(StaffOfficer):
    """An officer whose requests outlast a server restart (through an `Http` of its own, with
    its own cookies): reading is tried until it gets an answer, logging in again when the
    session is gone; an action is posted once, and a lost answer is None (see `send`)."""

    def __init__(self, http: Http, email: str) -> None:
        self.web = Http(http.server, http.deadline)
        super().__init__(f"{http.server.base}/staff", email, http=self.web.session)

    def login(self) -> None:
        while True:
            r = self.send("POST", "/login", data={"email": self.email})
            if r is not None and r.status_code == 200:
                self.csrf = r.json()["csrf"]
                return
            time.sleep(0.2)

    def get(self, path: str) -> dict[str, Any]:
        while True:
            r = self.send("GET", path)
            if r.status_code == 200:
                return dict(r.json())
            if r.status_code == 401:
                self.login()
                continue
            if r.status_code >= 500:
                time.sleep(0.2)
                continue
            raise AssertionError(f"{self.email} GET {path}: {r.status_code} {r.text[:300]}")

    def send(self, method: str, path: str, **kw: Any) -> requests.Response | None:
        """An action is posted once (None: its answer was lost, the server went away); after
        a refusal for the CSRF token (a new server's session) the officer logs in again."""
        if method != "POST" or path == "/login":
            return self.web.call(method, f"{self.root}{path}", **kw)
        r = self.web.call(method, f"{self.root}{path}", once=True, **kw)
        if r is not None and r.status_code in (401, 403) and "csrf" in r.text.lower():
            self.login()
        return r


@dataclass
class Resident:
    """One applicant and their case, driven through all eight steps whatever happens to the
    server in between. The officers' part is sapa.dev.driver's walk, which looks at where the
    case stands before every move, so an action whose answer was lost in a crash is never done
    twice by the driver; the resident's own part (greeting, form) is just as careful."""

    http: Http
    wa_id: str
    name: str
    passphrase: str = ""  # the head of office's, for a BSrE signer
    log: list[str] = field(default_factory=list)
    case_id: str | None = None
    reg_no: str | None = None
    done: bool = False
    error: str | None = None
    desk: HttpDesk = field(init=False)

    def __post_init__(self) -> None:
        self.desk = HttpDesk(
            OFFICE,
            OFFICE.first_officer(KECAMATAN),
            lambda email: Officer(self.http, email),
            strict=False,  # a refusal (the server restarting) is noted; the walk looks again
            timeout=math.inf,  # the run's deadline (Stopped) bounds every wait
            report=lambda email, action, status: self.note(f"{email} {action} → {status}"),
        )

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic():.2f} {text}")

    def conversation(self) -> list[dict[str, Any]]:
        while True:
            r = self.http.call(
                "POST",
                "/dev/wa/api/conversation",
                json={"phone_number_id": demo.PHONE_NUMBER_ID, "wa_id": self.wa_id},
            )
            if r.status_code == 200:
                return list(r.json()["messages"])
            time.sleep(0.2)

    def say(self, text: str) -> None:
        """Send a WhatsApp message once: after a lost answer, look whether the simulator has
        it (then it delivers the webhook itself, as Meta retries) before sending again."""
        while True:
            r = self.http.call(
                "POST",
                "/dev/wa/api/send",
                once=True,
                json={
                    "phone_number_id": demo.PHONE_NUMBER_ID,
                    "from": self.wa_id,
                    "name": self.name,
                    "text": text,
                },
            )
            if r is not None and r.status_code == 200:
                return
            if any(m["direction"] == "in" and m["text"] == text for m in self.conversation()):
                return
            time.sleep(0.1)

    def wait(self, what: str, probe: Callable[[], Any], interval: float = 0.25) -> Any:
        while True:
            self.http.check_deadline()
            value = probe()
            if value:
                return value
            time.sleep(interval)

    def link(self) -> str | None:
        for m in self.conversation():
            found = re.search(r"https?://\S+/guestbook/f/\S+", m.get("text") or "")
            if m["direction"] == "out" and found:
                # The number is what finds the case when the guest book's answer is lost in a
                # crash (a 410 on the retry): read it here on every run, or fail loudly.
                reg = re.search(r"\b\d{6}-\d{8}-\d{4}\b", m["text"])
                if reg is None:
                    raise AssertionError(f"no registration number in the link: {m['text']!r}")
                self.reg_no = reg.group(0)
                return found.group(0)
        return None

    def submit(self, url: str) -> None:
        pdf = simple_pdf("Buku Nikah", [f"Salinan buku nikah {self.name}"])
        form = {**demo.FORM, "name": self.name}
        while True:
            r = self.http.call(
                "POST",
                url,
                data=form,
                headers={"Accept": "application/json"},
                files={
                    "doc_kk_lama": ("kk.png", io.BytesIO(demo._PNG), "image/png"),
                    "doc_buku_nikah": ("nikah.pdf", io.BytesIO(pdf), "application/pdf"),
                },
            )
            if r.status_code == 200:
                self.reg_no = r.json()["reg_no"]
                return
            if r.status_code == 410:  # the form was submitted: the answer was lost in a crash
                return
            if r.status_code >= 500 or r.status_code == 429:
                time.sleep(0.2)
                continue
            raise AssertionError(f"guest book: {r.status_code} {r.text[:300]}")

    def find_case(self) -> str:
        counter = self.desk.officer(self.desk.looker)

        def probe() -> str | None:
            rows = counter.worklist()
            return next((c["id"] for c in rows if c["reg_no"] == self.reg_no), None)

        return str(self.wait("the case in the worklist", probe))

    def run(self) -> None:
        try:
            self._run()
            self.done = True
        except Stopped:
            self.error = "deadline passed"
        except Exception as exc:  # reported by the test with the case's log
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        self.say("Selamat pagi, saya mau mengurus kartu keluarga")
        self.note("greeted")
        url = self.wait("the guest-book link", self.link)
        self.submit(url)
        self.note(f"submitted {self.reg_no}")
        self.case_id = self.find_case()
        self.note(f"found {self.case_id}")
        walk(self.desk, self.case_id, "delivered", passphrase=self.passphrase)
        self.note("delivered")


# --- what the data directory holds afterwards (read with the server stopped) ------------------


def rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


def signatures_in(pdf: bytes) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return len(PdfFileReader(io.BytesIO(pdf)).embedded_signatures)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
