"""The counter officer's side in a real browser: login, worklist, the case, SOP step 3."""

from __future__ import annotations

from typing import Any

import pytest

from sapa.dev import demo
from sapa.dev.localserver import LocalStack
from sapa.domain.texts import ACTION_LABELS, STATE_LABELS

from .support import (
    LOKET,
    fresh_wa_id,
    greet_over_http,
    login,
    submit_over_http,
)

pytestmark = pytest.mark.browser


def test_counter_officer_claims_and_checks_a_submitted_case(stack: LocalStack, desk: Any) -> None:
    page = desk
    # GIVEN a resident of Somba Opu who has submitted the guest book
    reg_no = submit_over_http(greet_over_http(stack.base_url, fresh_wa_id()))

    # WHEN the Somba Opu counter officer logs in
    login(page, stack.base_url, "Petugas Loket Somba Opu")

    # THEN they land on their worklist and see the case waiting for them
    assert page.url.endswith("/staff/worklist")
    assert page.get_by_role("heading", name="Daftar kerja").is_visible()
    assert "Petugas Loket Somba Opu" in page.locator("header").inner_text()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=reg_no))
    assert row.count() == 1
    assert STATE_LABELS["form_submitted"] in row.inner_text()
    assert "Somba Opu" in row.inner_text()

    # WHEN they open it
    row.get_by_role("link", name=reg_no).click()
    page.get_by_role("heading", name=reg_no).wait_for()
    # THEN they see the resident's data and documents
    assert STATE_LABELS["form_submitted"] in page.locator("main").inner_text()
    assert demo.FORM["nik"] in page.locator("main").inner_text()  # loket sees the full NIK
    documents = page.locator("section", has=page.get_by_role("heading", name="Dokumen"))
    tabs = documents.locator("a[target=viewer]")
    assert tabs.all_inner_texts() == ["KK lama", "Buku nikah/akta perkawinan atau akta cerai"]
    # the first in the viewer beside the data; the other opens in it at a click, no script
    viewer = documents.locator("iframe[name=viewer]")
    assert (viewer.get_attribute("src") or "").endswith("/documents/0")
    with page.expect_response(lambda r: r.url.endswith("/documents/1")) as shown:
        tabs.nth(1).click()
    assert shown.value.status == 200
    assert shown.value.frame.name == "viewer"

    # WHEN they take the case ("Ambil (klaim)") and then perform the "check" action
    with page.expect_navigation():
        page.get_by_role("button", name="Ambil (klaim)").click()
    # (the officer by name, the e-mail on hover)
    holder = page.locator("main").get_by_text("Petugas Loket Somba Opu", exact=True).first
    assert "ditangani Petugas Loket Somba Opu" in page.locator("main").inner_text()
    assert holder.get_attribute("title") == LOKET
    assert page.get_by_role("button", name="Ambil (klaim)").count() == 0  # not offered twice
    with page.expect_navigation():
        page.get_by_role("button", name=ACTION_LABELS["check"], exact=True).click()

    # THEN the case page shows the new status
    page.get_by_role("heading", name=reg_no).wait_for()
    status = page.locator("p", has_text="Status:")
    assert STATE_LABELS["checked"] in status.inner_text()
    assert STATE_LABELS["form_submitted"] not in status.inner_text()
    # AND the timeline lists step 3 as done by this officer
    timeline = page.locator(".card", has=page.get_by_role("heading", name="Linimasa"))
    step3 = timeline.get_by_role("row").filter(has=page.get_by_role("cell", name="3", exact=True))
    assert step3.count() == 1
    cells = step3.get_by_role("cell").all_inner_texts()
    assert cells[0] == "3"
    assert cells[1].startswith("Memeriksa data dan kelengkapan")
    assert cells[2] == "Petugas Loket Somba Opu"
    # AND the next step (contacting the resident) is now offered to them
    assert page.get_by_role("button", name=ACTION_LABELS["contact"], exact=True).is_visible()
    # AND the store agrees
    case = next(k for k in stack.c.store.list_cases(limit=1000) if k.reg_no == reg_no)
    assert case.state == "checked"
