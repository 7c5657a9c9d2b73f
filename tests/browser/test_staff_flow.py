"""One request through SOP steps 3–7 in a real browser, each step by its own officer (with a
return by the head of division on the way), a claim race between two counter officers, and the
worklist's SLA clocks on a screenshot.

The module's stack has a second counter officer of Somba Opu (its own STAFF_FILE), so two
people can really race for one case. The worklist screenshot is published to
docs/screenshots/staff-worklist.png with SAPA_UPDATE_SCREENSHOTS=1 (like test_screenshots.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from sapa.adapters.pdf import pdf_page_count, simple_pdf
from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.domain.case import Case
from sapa.domain.texts import ACTION_LABELS, STATE_LABELS
from sapa.services.views import case_timeline
from sapa.settings import load_settings

from .support import (
    DESKTOP,
    KABID,
    KADIS,
    LOKET,
    OPERATOR,
    ROOT,
    VERIFIKATOR,
    fresh_wa_id,
    greet_over_http,
    login,
    officer,
    reveal,
    submit_over_http,
    wait_for,
)

pytestmark = pytest.mark.browser

DOCS = ROOT / "docs" / "screenshots"
STAFF_DEMO = ROOT / "shared" / "sapa" / "data" / "staff_demo.toml"

LOKET_2 = "loket.kedua.sombaopu@sapa.test"
NAMES = {
    LOKET: "Petugas Loket Somba Opu",
    LOKET_2: "Petugas Loket Kedua Somba Opu",
    VERIFIKATOR: "Petugas Verifikasi Berkas",
    OPERATOR: "Operator SIAK",
    KABID: "Kepala Bidang Pelayanan",
    KADIS: "Kepala Dinas",
    "admin@sapa.test": "Admin SAPA",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The embedded stack with the demo staff plus a second Somba Opu counter officer."""
    root = tmp_path_factory.mktemp("sapa-staff-flow")
    staff = root / "staff.toml"
    staff.write_text(
        STAFF_DEMO.read_text("utf-8")
        + f'\n[[staff]]\nemail = "{LOKET_2}"\nname = "{NAMES[LOKET_2]}"\n'
        'roles = ["loket"]\nkecamatan = "730608"\n',
        "utf-8",
    )
    s = LocalStack(load_settings(sapa_data_dir=root / "var", staff_file=staff))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def officer_page(browser: Any) -> Iterator[Callable[[str], Any]]:
    """`officer_page(email)`: a fresh desktop browser profile with that officer logged in."""
    contexts: list[Any] = []

    def open_as(email: str, base: str) -> Any:
        ctx = browser.new_context(viewport=DESKTOP, locale="id-ID", timezone_id="Asia/Makassar")
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        login(page, base, NAMES[email])
        return page

    yield open_as  # type: ignore[misc]
    for ctx in contexts:
        ctx.close()


def case_by_reg_no(stack: LocalStack, reg_no: str) -> Case:
    return next(k for k in stack.c.store.list_cases(limit=10_000) if k.reg_no == reg_no)


def open_case(page: Any, reg_no: str) -> None:
    """From the worklist, open the case by its number."""
    page.goto(page.url.split("/staff/")[0] + "/staff/worklist")
    page.get_by_role("link", name=reg_no).click()
    page.get_by_role("heading", name=reg_no).wait_for()


def status(page: Any) -> str:
    return str(page.locator("p", has_text="Status:").inner_text())


def press(page: Any, action: str) -> Any:
    """Press the button of an SOP action (or claim) and wait for the page it leads to."""
    with page.expect_navigation() as nav:
        page.get_by_role("button", name=ACTION_LABELS[action], exact=True).click()
    return nav.value


def claim_and_wait(page: Any, email: str) -> None:
    assert press(page, "claim").status == 200
    assert f"ditangani {NAMES[email]}" in status(page)


# ---- the whole way from the counter to the head of office ----------------------------------------


def test_a_case_goes_through_steps_3_to_7_in_the_browser(
    stack: LocalStack, officer_page: Callable[..., Any], tmp_path: Path
) -> None:
    base = stack.base_url
    # GIVEN a resident of Somba Opu who has submitted the guest book
    reg_no = submit_over_http(greet_over_http(base, fresh_wa_id()))

    # WHEN the counter officer takes it, checks it and contacts the resident (with a note)
    loket = officer_page(LOKET, base)
    open_case(loket, reg_no)
    claim_and_wait(loket, LOKET)
    press(loket, "check")
    assert STATE_LABELS["checked"] in status(loket)
    loket.get_by_label("Catatan hasil menghubungi pemohon").fill("Pemohon dihubungi, KK asli ada")
    press(loket, "contact")
    assert STATE_LABELS["contacted"] in status(loket)

    # WHEN the file verifier forwards it to SIAK
    verifier = officer_page(VERIFIKATOR, base)
    open_case(verifier, reg_no)
    press(verifier, "forward")
    assert STATE_LABELS["forwarded"] in status(verifier)

    # WHEN the SIAK operator opens it, takes it and downloads the hand-off package
    operator = officer_page(OPERATOR, base)
    open_case(operator, reg_no)
    claim_and_wait(operator, OPERATOR)
    handoff = operator.get_by_role("link", name=re.compile("Unduh paket serah terima SIAK"))

    def package_ready() -> bool:
        operator.reload()
        return bool(handoff.count())

    wait_for("the SIAK hand-off package", package_ready)
    with operator.expect_download() as download:
        handoff.click()
    assert download.value.suggested_filename == f"serah-terima-siak-{reg_no}.zip"
    saved = tmp_path / "handoff.zip"
    download.value.save_as(saved)
    z = zipfile.ZipFile(saved)
    assert z.namelist()[0] == "00-ringkasan.pdf" and z.namelist()[-1] == "data.json"
    assert pdf_page_count(z.read("00-ringkasan.pdf")) >= 1
    assert json.loads(z.read("data.json"))["form"]["nik"] == demo.FORM["nik"]
    # AND enters it into SIAK with the reference and the draft SIAK printed
    enter_siak(operator, "SIAK-7306-0001", "konsep-1.pdf")
    assert STATE_LABELS["entered_in_siak"] in status(operator)

    # WHEN the head of division returns it with a reason
    kabid = officer_page(KABID, base)
    open_case(kabid, reg_no)
    reveal(kabid, "return")
    why = kabid.get_by_label("Alasan mengembalikan satu langkah (wajib)")
    why.fill("Alamat di SIAK salah ketik")
    press(kabid, "return")
    # THEN it is back with the SIAK operator, on his worklist, and the reason is on record
    assert STATE_LABELS["returned"] in status(kabid)
    operator.goto(f"{base}/staff/worklist")
    row = operator.get_by_role("row").filter(has=operator.get_by_role("link", name=reg_no))
    assert STATE_LABELS["returned"] in row.inner_text()
    case = case_by_reg_no(stack, reg_no)
    returned = [e for e in stack.c.store.events(case.id) if e.event == "return"]
    assert [(e.actor_id, e.detail["reason"]) for e in returned] == [
        (KABID, "Alamat di SIAK salah ketik")
    ]

    # WHEN the operator enters it again and the head of division approves
    open_case(operator, reg_no)
    claim_and_wait(operator, OPERATOR)
    enter_siak(operator, "SIAK-7306-0002", "konsep-2.pdf")
    open_case(kabid, reg_no)
    approved = press(kabid, "approve")  # the approval function's form
    # THEN the head of division is back on the case page, which says approved
    assert approved.status == 200
    assert kabid.url.endswith(f"/staff/cases/{case.id}")
    assert STATE_LABELS["approved"] in status(kabid)
    assert case_by_reg_no(stack, reg_no).siak_ref == "SIAK-7306-0002"

    # AND the head of office sees the sign button
    kadis = officer_page(KADIS, base)
    open_case(kadis, reg_no)
    assert kadis.get_by_role("button", name=ACTION_LABELS["sign"], exact=True).is_visible()

    # AND the timeline shows each step with who did it and the times really measured
    case = case_by_reg_no(stack, reg_no)
    contact = next(e for e in stack.c.store.events(case.id) if e.event == "contact")
    assert contact.detail["note"] == "Pemohon dihubungi, KK asli ada"
    rows = timeline_rows(kadis)
    done = [r for r in rows if r["number"] in {"3", "4", "5", "6", "7"}]
    assert [(r["number"], r["by"]) for r in done] == [
        ("3", NAMES[LOKET]),
        ("4", NAMES[LOKET]),
        ("5", NAMES[VERIFIKATOR]),
        ("6", NAMES[OPERATOR]),
        ("7", NAMES[KABID]),  # returned it
        ("6", NAMES[OPERATOR]),
        ("7", NAMES[KABID]),  # approved it
    ]
    measured = [s for s in case_timeline(stack.c, case)["steps"] if s["done_at"]]
    measured = [s for s in measured if s["number"] in (3, 4, 5, 6, 7)]
    assert [(r["waiting"], r["handling"]) for r in done] == [
        (s["waiting"], s["handling"]) for s in measured
    ]
    assert all(r["handling"] != "-" for r in done)
    # the operator's first run lasted from his claim through the download to the upload
    first_siak = measured[3]
    assert first_siak["handling_seconds"] > 0.1
    assert first_siak["claimed_by"] == OPERATOR


def enter_siak(page: Any, siak_ref: str, filename: str) -> None:
    page.get_by_label("Nomor referensi SIAK").fill(siak_ref)
    page.get_by_label("Konsep dokumen dari SIAK (PDF)").set_input_files(
        {
            "name": filename,
            "mimeType": "application/pdf",
            "buffer": simple_pdf("Konsep Kartu Keluarga", [f"Referensi {siak_ref}"]),
        }
    )
    press(page, "enter_siak")


def timeline_rows(page: Any) -> list[dict[str, str]]:
    table = page.locator(".card", has=page.get_by_role("heading", name="Linimasa"))
    out = []
    for row in table.locator("tbody tr").all():
        cells = row.get_by_role("cell").all_inner_texts()
        out.append(
            {
                "number": cells[0],
                "kegiatan": cells[1],
                "by": cells[2],
                "waiting": cells[3],
                "handling": cells[4],
                "mutu_baku": cells[5],
            }
        )
    return out


# ---- two counter officers, one case --------------------------------------------------------------


def test_two_counter_officers_race_for_a_case_and_the_admin_reassigns_it(
    stack: LocalStack, officer_page: Callable[..., Any]
) -> None:
    base = stack.base_url
    # GIVEN a submitted case open on the screens of both Somba Opu counter officers
    reg_no = submit_over_http(greet_over_http(base, fresh_wa_id()))
    pages = {email: officer_page(email, base) for email in (LOKET, LOKET_2)}
    for page in pages.values():
        open_case(page, reg_no)
        assert page.get_by_role("button", name=ACTION_LABELS["claim"]).is_visible()

    # WHEN both press "Ambil (klaim)" at the same time (the two requests in flight together)
    navs = {}
    with pages[LOKET].expect_navigation() as a, pages[LOKET_2].expect_navigation() as b:
        for page in pages.values():
            page.get_by_role("button", name=ACTION_LABELS["claim"]).click(no_wait_after=True)
    navs = {LOKET: a.value, LOKET_2: b.value}

    # THEN exactly one has it, and the other is told who does
    winners = [email for email, resp in navs.items() if resp.status == 200]
    assert len(winners) == 1, {e: r.status for e, r in navs.items()}
    (winner,) = winners
    (loser,) = set(pages) - {winner}
    assert navs[loser].status == 409
    assert f"sedang ditangani oleh {NAMES[winner]}" in pages[loser].locator("main").inner_text()
    assert f"ditangani {NAMES[winner]}" in status(pages[winner])
    case = case_by_reg_no(stack, reg_no)
    assert case.current_run(stack.c.sop).claimed_by == winner  # type: ignore[union-attr]

    # WHEN the admin hands the case to the other one
    admin = officer_page("admin@sapa.test", base)
    admin.goto(f"{base}/staff/cases/{case.id}")
    reveal(admin, "reassign")
    admin.get_by_label("Alihkan ke petugas").select_option(loser)
    with admin.expect_navigation():
        admin.get_by_role("button", name=ACTION_LABELS["reassign"]).click()
    assert f"ditangani {NAMES[loser]}" in status(admin)

    # THEN both officers' pages say it is his now; only he may check it
    for page in pages.values():
        page.goto(f"{base}/staff/cases/{case.id}")
        assert f"ditangani {NAMES[loser]}" in status(page)
    check = ACTION_LABELS["check"]
    assert pages[winner].get_by_role("button", name=check, exact=True).count() == 0
    assert pages[winner].get_by_role("button", name=ACTION_LABELS["claim"]).count() == 0
    press(pages[loser], "check")
    assert STATE_LABELS["checked"] in status(pages[loser])


# ---- the worklist's SLA clocks -------------------------------------------------------------------


class ShiftedClock:
    """The system clock moved by `base` (to a time the office is open: the worklist's clocks
    run on working hours) and by `offset` (the stack's cases get older on purpose)."""

    def __init__(self, base: timedelta = timedelta(0)) -> None:
        self.base = base
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.base + self.offset


def back_to_office_hours(stack: LocalStack) -> timedelta:
    """How far back 10:00 of the office's last working day is (today's, if already past)."""
    cal = stack.c.sla_clocks.calendar
    assert cal is not None
    now = datetime.now(UTC)
    day = now.astimezone(cal.zone).date()
    while not (cal.open_on(day) and datetime.combine(day, time(10), cal.zone) <= now):
        day -= timedelta(days=1)
    return datetime.combine(day, time(10), cal.zone) - now


def test_the_worklist_shows_green_amber_and_red_clocks(
    stack: LocalStack, officer_page: Callable[..., Any], tmp_path: Path
) -> None:
    base = stack.base_url
    clock = ShiftedClock(back_to_office_hours(stack))
    stack.c.clock = clock  # type: ignore[misc]
    made: dict[str, str] = {}
    try:
        # GIVEN, at 10:00 on a working day, Somba Opu cases submitted 25 hours ago (past the
        # office's 24-hour target), 5 minutes ago (past the 1-minute check) and just now
        for colour, age in (
            ("red", timedelta(hours=25)),
            ("amber", timedelta(minutes=5)),
            ("green", timedelta(0)),
        ):
            clock.offset = -age
            made[colour] = submit_over_http(greet_over_http(base, fresh_wa_id()))
            case = case_by_reg_no(stack, made[colour])
            wait_for("the pre-check", lambda c=case: stack.c.store.get(c.id).precheck)
    finally:
        clock.offset = timedelta(0)
    # AND one of the fresh ones already taken by the counter officer
    made["taken"] = submit_over_http(greet_over_http(base, fresh_wa_id()))
    officer(base).act(case_by_reg_no(stack, made["taken"]).id, "claim")

    # WHEN the counter officer opens his worklist
    page = officer_page(LOKET, base)
    page.goto(f"{base}/staff/worklist")

    # THEN the oldest is on top, in red; then amber; the fresh ones green, one marked taken
    def row(reg_no: str) -> Any:
        return page.get_by_role("row").filter(has=page.get_by_role("link", name=reg_no))

    for colour, reg_no in made.items():
        clock_cell = row(reg_no).locator("span.clock")
        want = "green" if colour == "taken" else colour
        assert clock_cell.get_attribute("class") == f"clock {want}", (colour, reg_no)
    # the working hours of the step first, its 25 hours beside them
    assert row(made["red"]).locator("span.clock").inner_text().endswith(" kerja")
    assert row(made["red"]).locator(".hint").inner_text().startswith("25 j")
    assert NAMES[LOKET] in row(made["taken"]).inner_text()
    links = page.locator("tbody tr td:first-child a").all_inner_texts()
    assert links.index(made["red"]) < links.index(made["amber"]) < links.index(made["green"])

    # AND the table, officer e-mails included, stays inside the page's column (the filter
    # card's width): nothing to scroll sideways on an office screen
    column = page.locator("form.filters").bounding_box()
    table = page.locator("main table").bounding_box()
    assert column is not None and table is not None
    assert table["x"] + table["width"] <= column["x"] + column["width"] + 1, (table, column)
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0

    shot = tmp_path / "staff-worklist.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SAPA_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS / shot.name)
