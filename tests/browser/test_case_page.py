"""The case page in Chromium, as officers use it all day: on a 1366×768 office screen the step's
actions, the resident's data and the document the step is decided on are all in view without
scrolling; the head of office signs and the page shows the signed document by itself, without a
reload; a reply cannot be sent twice by a double click; on a 360 px phone nothing sticks out
sideways. The screenshots docs/screenshots/staff-case-approve.png and staff-case-signed.png
are refreshed with

    SAPA_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_case_page.py
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sapa.dev import demo
from sapa.dev.driver import HttpDesk, Office, Officer, walk
from sapa.dev.localserver import LocalStack
from sapa.domain.texts import ACTION_LABELS, STATE_LABELS
from sapa.ports import SignedPdf, SignRequest

from .conftest import _context
from .support import (
    LOKET,
    OFFICE,
    PHONE,
    fresh_wa_id,
    greet_over_http,
    login,
    submit_over_http,
)
from .test_screenshots import overflow, publish

pytestmark = pytest.mark.browser


@pytest.fixture
def office(browser: Any) -> Iterator[Any]:
    """A page on a 1366×768 office screen."""
    ctx = _context(browser, OFFICE)
    yield ctx.new_page()
    ctx.close()


def case_in(stack: LocalStack, state: str) -> tuple[str, str]:
    """A new Somba Opu case walked over HTTP, by each officer in turn, until `state`: its id
    and registration number."""
    base = stack.base_url
    reg_no = submit_over_http(greet_over_http(base, fresh_wa_id()))
    case_id = next(k.id for k in stack.c.store.list_cases(limit=10_000) if k.reg_no == reg_no)
    if state != "form_submitted":
        desk = HttpDesk(Office.of(stack.c), LOKET, lambda email: Officer(f"{base}/staff", email))
        try:
            walk(desk, case_id, state)
        finally:
            desk.close()
    return case_id, reg_no


def open_case(page: Any, stack: LocalStack, name: str, case_id: str, reg_no: str) -> None:
    login(page, stack.base_url, name)
    page.goto(f"{stack.base_url}/staff/cases/{case_id}")
    page.get_by_role("heading", name=reg_no).wait_for()


def in_view(page: Any, locator: Any) -> bool:
    """Whether the element is wholly inside the window as it is (not scrolled)."""
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(
        box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def assert_step_data_and_document_in_view(page: Any, button: str) -> None:
    assert page.evaluate("scrollY") == 0
    step = page.get_by_role("button", name=button, exact=True)
    data = page.locator("section", has=page.get_by_role("heading", name="Data pemohon"))
    viewer = page.locator("iframe[name=viewer]")
    for what, locator in (("action", step), ("data", data.locator("table")), ("doc", viewer)):
        assert in_view(page, locator), (what, locator.bounding_box())
    # the document is shown big enough to read, not a strip
    box = viewer.bounding_box()
    assert box is not None and box["height"] >= 400 and box["width"] >= 500, box


def test_the_counter_officer_checks_without_scrolling(stack: LocalStack, office: Any) -> None:
    page = office
    # GIVEN a submitted case, WHEN the counter officer opens it on a 1366×768 screen
    case_id, reg_no = case_in(stack, "form_submitted")
    open_case(page, stack, "Petugas Loket Somba Opu", case_id, reg_no)
    # THEN the check, the resident's data and the first document are all in view together
    assert_step_data_and_document_in_view(page, ACTION_LABELS["check"])
    assert page.get_by_role("cell", name=demo.FORM["nik"]).is_visible()
    assert (page.locator("iframe[name=viewer]").get_attribute("src") or "").endswith("/0")
    # AND the check is the one primary button; rejecting is folded away, after it
    primary = page.locator("section.step button.primary")
    assert primary.all_inner_texts() == [ACTION_LABELS["check"]]
    summaries = page.locator("section.step summary").all_inner_texts()
    assert summaries[-1] == ACTION_LABELS["reject"] + "…"
    # WHEN they check it
    with page.expect_navigation():
        page.get_by_role("button", name=ACTION_LABELS["check"], exact=True).click()
    # THEN the next step, contacting the resident, is the one in view
    assert STATE_LABELS["checked"] in page.locator("p", has_text="Status:").inner_text()
    assert_step_data_and_document_in_view(page, ACTION_LABELS["contact"])


def test_the_head_of_division_sees_the_siak_draft_beside_approve(
    stack: LocalStack, office: Any, tmp_path: Path
) -> None:
    page = office
    # GIVEN a case the SIAK operator has entered, with SIAK's draft uploaded
    case_id, reg_no = case_in(stack, "entered_in_siak")
    case = stack.c.store.get(case_id)
    assert case.draft is not None
    # WHEN the head of division opens it on a 1366×768 screen
    draft = f"/documents/{len(case.documents)}"
    with page.expect_response(lambda r: r.url.endswith(draft)) as shown:
        open_case(page, stack, "Kepala Bidang Pelayanan", case_id, reg_no)
    # THEN the draft is in the viewer, beside "approve" and the data, without scrolling
    assert shown.value.status == 200 and shown.value.frame.name == "viewer"
    assert shown.value.headers["content-type"] == "application/pdf"
    assert_step_data_and_document_in_view(page, ACTION_LABELS["approve"])
    shot = tmp_path / "staff-case-approve.png"
    page.wait_for_timeout(1500)  # the PDF viewer draws the page
    page.screenshot(path=str(shot))
    publish(shot)
    # AND approving it moves the case on
    with page.expect_navigation():
        page.get_by_role("button", name=ACTION_LABELS["approve"], exact=True).click()
    assert STATE_LABELS["approved"] in page.locator("p", has_text="Status:").inner_text()


class GatedSigner:
    """The stack's signer, held at a gate until the test opens it (a signature takes its time
    at BSrE; here the test decides how long)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = threading.Event()
        self.asked = threading.Event()

    def sign(self, request: SignRequest) -> SignedPdf:
        self.asked.set()
        self.gate.wait(timeout=30)
        return self.real.sign(request)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_the_head_of_office_signs_and_the_page_shows_the_signed_document_by_itself(
    stack: LocalStack, office: Any, tmp_path: Path
) -> None:
    page = office
    # GIVEN an approved case the head of office opens on a 1366×768 screen: the draft beside
    # "Tandatangani (TTE)", the affirmative action first
    case_id, reg_no = case_in(stack, "approved")
    open_case(page, stack, "Kepala Dinas", case_id, reg_no)
    assert_step_data_and_document_in_view(page, ACTION_LABELS["sign"])
    buttons = page.locator("section.step button, section.step summary").all_inner_texts()
    assert buttons[0] == ACTION_LABELS["sign"]
    assert buttons.index(ACTION_LABELS["sign"]) < buttons.index(ACTION_LABELS["reject"] + "…")
    gated = GatedSigner(stack.c.signer)
    stack.c.signer = gated  # type: ignore[misc]
    try:
        # WHEN they sign, and the signer takes its time
        with page.expect_navigation():
            page.get_by_role("button", name=ACTION_LABELS["sign"], exact=True).click()
        assert gated.asked.wait(timeout=20)
        page.evaluate("window.sapaNoReload = 'still here'")
        # THEN the page says the signature is under way; nothing is offered meanwhile
        running = page.get_by_text("Dokumen sedang ditandatangani secara elektronik (TTE).")
        assert running.is_visible()
        assert page.get_by_role("button", name=ACTION_LABELS["sign"]).count() == 0
        assert page.get_by_text("Tidak ada tindakan untuk peran Anda").count() == 0
        # WHEN the signature is back
        gated.gate.set()
        # THEN the page shows the signed document and its verification page by itself:
        # without a reload (what the page's script kept in the window is still there)
        link = page.get_by_role("link", name="Buka dokumen bertanda tangan (PDF)")
        link.wait_for(timeout=20_000)
        assert page.evaluate("window.sapaNoReload") == "still here"
        verify = page.get_by_role("link", name="Halaman verifikasi publik")
        assert (verify.get_attribute("href") or "").startswith(stack.c.settings.verify_base)
        assert running.count() == 0
        signed = stack.c.store.get(case_id)
        assert signed.signed is not None
        frame = f"/documents/{len(signed.documents) + 1}"
        assert (page.locator("iframe[name=viewer]").get_attribute("src") or "").endswith(frame)
        # AND what is left, revoking, is offered; never "nothing for your role" above it
        assert page.get_by_text(ACTION_LABELS["revoke_document"] + "…").is_visible()
        assert page.get_by_text("Tidak ada tindakan untuk peran Anda").count() == 0
        shot = tmp_path / "staff-case-signed.png"
        page.wait_for_timeout(1500)  # the PDF viewer draws the page
        page.screenshot(path=str(shot))
        publish(shot)
        # AND the verification page the link leads to says the document is valid
        page.goto(verify.get_attribute("href") or "")
        assert "SAH — ditandatangani secara elektronik" in page.locator("main").inner_text()
    finally:
        gated.gate.set()
        stack.c.signer = gated.real  # type: ignore[misc]


def test_a_double_click_on_kirim_sends_one_reply(stack: LocalStack, office: Any) -> None:
    page = office
    # GIVEN a submitted case the counter officer has open
    case_id, reg_no = case_in(stack, "form_submitted")
    open_case(page, stack, "Petugas Loket Somba Opu", case_id, reg_no)
    text = "Selamat siang, berkas Anda sedang kami periksa."
    page.get_by_label("Balas pemohon").fill(text)
    # WHEN they double-click "Kirim"
    with page.expect_navigation():
        page.get_by_role("button", name="Kirim", exact=True).dblclick()
    # THEN one reply went out, and the page shows it as theirs with its way to the resident
    replies = [e for e in stack.c.store.events(case_id) if e.event == "reply"]
    assert len(replies) == 1
    message = page.locator(".msg.officer", has_text=text)
    assert message.count() == 1
    assert "Petugas Loket Somba Opu" in message.inner_text()
    status = message.locator(".msg-status").inner_text()
    assert status in ("mengirim…", "terkirim", "diterima", "dibaca"), status


@pytest.mark.parametrize(
    ("name", "state"), [("Petugas Loket Somba Opu", "form_submitted"), ("Kepala Dinas", "approved")]
)
def test_on_a_360px_phone_nothing_sticks_out_sideways(
    stack: LocalStack, page: Any, name: str, state: str
) -> None:
    # GIVEN a case at the officer's step, opened on a 360 px phone
    assert page.viewport_size == PHONE
    case_id, reg_no = case_in(stack, state)
    open_case(page, stack, name, case_id, reg_no)
    # THEN the page is as wide as the phone, open folds and all, and the step comes first
    for summary in page.locator("section.step summary").all():
        summary.click()
    assert overflow(page) == 0
    step = page.locator("section.step").bounding_box()
    viewer = page.locator("iframe[name=viewer]").bounding_box()
    assert step is not None and viewer is not None and step["y"] < viewer["y"]
    # AND so are the worklist and, for the head of office, the dashboard
    page.goto(f"{stack.base_url}/staff/worklist")
    assert overflow(page) == 0
    if name == "Kepala Dinas":
        page.goto(f"{stack.base_url}/staff/dashboard")
        assert overflow(page) == 0
