"""Fixtures of the staff-workspace tests: logged-in officers on the functions-framework test
client, cases built along the SOP with the services, and a library of prebuilt cases (one per
state) that a test copies into its own data directory instead of building them again.

The officers are read from staff_demo.toml itself and the cases are driven with the helpers of
tests/functions (read only: the same code paths the functions call)."""

from __future__ import annotations

import shutil
import sqlite3
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.clock import FixedClock
from sapa.bootstrap import Container
from sapa.services import signing
from tests.conftest import ROOT, RecordingQueue, make_container
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import (  # noqa: F401  (names the tests import from here)
    JSON,
    Flow,
    Officer,
    app_for,
    tiny_pdf,
)

# tests/functions' fixtures, offered to these tests too: `login(email)`, an officer on the staff
# function's test client, `flow`, cases walked along the SOP with the services, and
# `run_task(kind, payload, name)`, a task delivered to its function as Cloud Tasks does.
from tests.functions.conftest import client_for as client_for
from tests.functions.conftest import flow as flow
from tests.functions.conftest import login as login
from tests.functions.conftest import run_task as run_task

DATA = ROOT / "shared" / "sapa" / "data"

SOMBA_OPU = "730608"
BONTONOMPO = "730601"

# ---- the staff directory, straight from its TOML -------------------------------------------------

STAFF_TOML: list[dict[str, Any]] = tomllib.loads((DATA / "staff_demo.toml").read_text("utf-8"))[
    "staff"
]


def officer_email(role: str, kecamatan: str | None = None) -> str:
    """The one demo officer holding `role` (of `kecamatan`, for the counter)."""
    (email,) = [
        s["email"]
        for s in STAFF_TOML
        if role in s["roles"] and (kecamatan is None or s.get("kecamatan") == kecamatan)
    ]
    return str(email)


LOKET = officer_email("loket", SOMBA_OPU)
LOKET_ELSEWHERE = officer_email("loket", BONTONOMPO)
VERIFIKATOR = officer_email("verifikator")
OPERATOR = officer_email("operator_siak")
KABID = officer_email("kabid")
KADIS = officer_email("kadis")
ADMIN = officer_email("admin")
NAMES = {s["email"]: s["name"] for s in STAFF_TOML}


def snapshot(c: Container, case_id: str) -> dict[str, Any]:
    """Everything a request could change about one case, the version included, and the tasks
    waiting in the (recording) queue."""
    case = c.store.get(case_id)
    q = c.queue
    return {
        "case": case.model_dump(mode="json"),
        "events": [e.model_dump(mode="json") for e in c.store.events(case_id)],
        "messages": [asdict(m) for m in c.store.messages(case_id)],
        "tasks": [(t.kind, t.name) for t in q.tasks] if isinstance(q, RecordingQueue) else [],
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two snapshots: {"case.<field>": (before, after), "events": …}."""
    out: dict[str, Any] = {}
    for key in before["case"].keys() | after["case"].keys():
        if before["case"].get(key) != after["case"].get(key):
            out[f"case.{key}"] = (before["case"].get(key), after["case"].get(key))
    for part in ("events", "messages", "tasks"):
        if before[part] != after[part]:
            out[part] = after[part][len(before[part]) :] or after[part]
    return out


def assert_unchanged(c: Container, case_id: str, before: dict[str, Any]) -> None:
    diff = changes(before, snapshot(c, case_id))
    assert not diff, f"the case changed: {diff}"


# ---- a library of prebuilt cases, one per state --------------------------------------------------

# key → (state the case is in, how it got there). "returned@X": returned from state X.
LIBRARY_STATES = (
    "greeted",
    "link_sent",
    "form_submitted",
    "checked",
    "contacted",
    "forwarded",
    "entered_in_siak",
    "approved",
    "signed",
    "delivered",
    "awaiting_correction",
    "returned@contacted",
    "returned@entered_in_siak",
)
# who returns the case from each state (the role waiting there, per the SOP's "@step")
RETURNED_BY = {"contacted": VERIFIKATOR, "entered_in_siak": KABID}


def build_state(flow: Flow, key: str, wa_id: str) -> str:
    """A Somba Opu case in state `key`, built along the SOP with the services; its id."""
    state, _, returned_from = key.partition("@")
    if state == "greeted":
        case = flow.greet(wa_id=wa_id)
        flow.queue.take()
    elif state == "awaiting_correction":
        case = flow.to("form_submitted", wa_id=wa_id)
        case = flow.act(case, LOKET, "request_correction", reason="Foto KK buram")
    elif state == "returned":
        case = flow.to(returned_from, wa_id=wa_id)
        case = flow.act(case, RETURNED_BY[returned_from], "return", reason="Data belum sesuai")
    elif state in ("signed", "delivered"):
        case = flow.sign(flow.to("approved", wa_id=wa_id))
        for task in flow.queue.take():
            if state == "delivered" and task.kind == "deliver":
                signing.deliver(flow.c, task.payload, task.name or "")
                # the resident's phone reports the document delivered (as Meta would)
                [doc] = [m for m in flow.c.store.messages(case.id) if m.type == "document"]
                signing.document_status(flow.c, case.id, str(doc.data["wamid"]), "delivered")
        case = flow.c.store.get(case.id)
    else:
        case = flow.to(state, wa_id=wa_id)
    flow.queue.take()
    assert case.state == state, (key, case.state)
    return case.id


@dataclass
class Library:
    """Prebuilt cases in a data directory of their own; `seed` copies them into a test's."""

    root: Path
    ids: dict[str, str]

    def seed(self, c: Container, *, blobs: bool = True) -> dict[str, str]:
        """Copy the library's database (and blobs) into `c`'s fresh, untouched data dir."""
        assert "store" not in c.__dict__, "seed before the container's store is opened"
        data = c.settings.sapa_data_dir
        data.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(self.root / "sapa.db")
        dst = sqlite3.connect(data / "sapa.db")
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        if blobs and (self.root / "blobs").exists():
            shutil.copytree(self.root / "blobs", data / "blobs", dirs_exist_ok=True)
        return dict(self.ids)


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("staff-library") / "var"
    c = make_container(root)
    c.clock = FixedClock()  # type: ignore[misc]
    c.queue = RecordingQueue()  # type: ignore[assignment,misc]
    wa = FakeWhatsApp()
    c.whatsapp = wa  # type: ignore[misc]
    flow = Flow(c, wa, c.queue)  # type: ignore[arg-type]
    ids = {key: build_state(flow, key, f"62811{n:08d}") for n, key in enumerate(LIBRARY_STATES)}
    c.store.db.close()  # type: ignore[attr-defined]
    yield Library(root, ids)


@pytest.fixture
def cases(container: Container, library: Library) -> dict[str, str]:
    """The library's cases, copied into this test's container: state key → case id."""
    return library.seed(container)


@pytest.fixture
def bare_cases(container: Container, library: Library) -> dict[str, str]:
    """The library's cases without their documents' bytes (for tests that never read them)."""
    return library.seed(container, blobs=False)


def siak_draft() -> bytes:
    return tiny_pdf("Konsep KTP-el dari SIAK")


LOKET_2 = "loket2.sombaopu@sapa.test"


@pytest.fixture
def two_lokets(container: Container, tmp_path: Path) -> str:
    """The demo directory plus a second counter officer of Somba Opu; his e-mail."""
    from sapa.adapters.embedded.staff_file import FileStaffDirectory

    text = (DATA / "staff_demo.toml").read_text("utf-8")
    text += (
        f'\n[[staff]]\nemail = "{LOKET_2}"\nname = "Petugas Loket Somba Opu 2"\n'
        f'roles = ["loket"]\nkecamatan = "{SOMBA_OPU}"\n'
    )
    path = tmp_path / "staff.toml"
    path.write_text(text, "utf-8")
    container.staff = FileStaffDirectory(path)  # type: ignore[misc]
    return LOKET_2
