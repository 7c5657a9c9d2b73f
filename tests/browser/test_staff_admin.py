"""The admin changes who staffs Somba Opu's counter, in the browser on an office screen
(1366×768): a new counter officer is added (after a field error shown beside its field), the
old one deactivated; the old one's claim goes back to the queue and his next action is refused,
while the new one takes the same Somba Opu case and checks it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sapa.dev.localserver import LocalStack
from sapa.domain.texts import ACTION_LABELS, STATE_LABELS

from .support import fresh_wa_id, greet_over_http, login, submit_over_http

pytestmark = pytest.mark.browser

OFFICE_SCREEN = {"width": 1366, "height": 768}
OLD = "loket.sombaopu@sapa.test"  # the demo staff file's counter of Somba Opu
OLD_NAME = "Petugas Loket Somba Opu"
NEW = "rina.loket@gowakab.go.id"
NEW_NAME = "Rina Pengganti Loket Somba Opu"


@pytest.fixture
def screen(browser: Any) -> Iterator[Callable[[str], Any]]:
    """`screen(name)`: a fresh office-screen browser profile with that officer logged in."""
    contexts: list[Any] = []

    def open_as(name: str, base: str) -> Any:
        ctx = browser.new_context(
            viewport=OFFICE_SCREEN, locale="id-ID", timezone_id="Asia/Makassar"
        )
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        login(page, base, name)
        return page

    yield open_as  # type: ignore[misc]
    for ctx in contexts:
        ctx.close()


def press(page: Any, name: str, within: Any = None) -> Any:
    """Press a button (of the part `within`, if given) and wait for the page it leads to."""
    with page.expect_navigation() as nav:
        (within or page).get_by_role("button", name=name, exact=True).click()
    return nav.value


def open_case(page: Any, base: str, reg_no: str) -> None:
    page.goto(f"{base}/staff/worklist")
    page.get_by_role("link", name=reg_no).click()
    page.get_by_role("heading", name=reg_no).wait_for()


def status(page: Any) -> str:
    return str(page.locator("p", has_text="Status:").inner_text())


def test_the_admin_replaces_somba_opus_counter_officer(
    stack: LocalStack, screen: Callable[..., Any]
) -> None:
    base = stack.base_url
    # GIVEN a Somba Opu request waiting for the counter, taken by its counter officer
    reg_no = submit_over_http(greet_over_http(base, fresh_wa_id()))
    old = screen(OLD_NAME, base)
    open_case(old, base, reg_no)
    assert press(old, ACTION_LABELS["claim"]).status == 200
    assert f"ditangani {OLD_NAME}" in status(old)

    # WHEN the admin opens the officers page from the worklist
    admin = screen("Admin SAPA", base)
    admin.get_by_role("link", name="Petugas", exact=True).click()
    admin.get_by_role("heading", name="Petugas", exact=True).wait_for()
    add = admin.locator("form", has=admin.get_by_role("heading", name="Tambah petugas"))
    # AND adds the new counter officer, forgetting the kecamatan at first
    add.get_by_label("E-mail (akun Google yang dipakai masuk)").fill(NEW.upper())
    add.get_by_label("Nama", exact=True).fill(NEW_NAME)
    add.get_by_role("checkbox", name="Petugas Loket Pelayanan").check()
    add.get_by_label("Nomor WhatsApp untuk peringatan SLA (boleh kosong)").fill("0812 3456 7001")
    assert press(admin, "Tambah petugas", add).status == 422
    # THEN the page says what is missing beside the field, and keeps what was typed
    add = admin.locator("form", has=admin.get_by_role("heading", name="Tambah petugas"))
    kecamatan = add.get_by_label("Kecamatan (wajib untuk Petugas Loket Pelayanan)")
    assert kecamatan.get_attribute("aria-invalid") == "true"
    error = add.locator("#add-err-kecamatan")
    assert error.inner_text() == "Kecamatan wajib dipilih untuk Petugas Loket Pelayanan."
    assert add.get_by_label("Nama", exact=True).input_value() == NEW_NAME
    assert stack.c.staff.get(NEW) is None
    # WHEN the kecamatan is chosen and the form sent again
    kecamatan.select_option(label="Somba Opu")
    assert press(admin, "Tambah petugas", add).status == 200
    assert "Petugas ditambahkan." in admin.get_by_role("status").inner_text()
    # AND the old counter officer is deactivated
    assert press(admin, f"Nonaktifkan {OLD_NAME}").status == 200
    said = admin.get_by_role("status").inner_text()
    assert "Petugas dinonaktifkan. 1 permohonan dikembalikan ke antrean." in said
    # THEN the trail on the page names both changes, by the admin
    trail = admin.locator(".card", has=admin.get_by_role("heading", name="Riwayat perubahan"))
    rows = trail.locator("tbody tr").all_inner_texts()
    assert "Petugas dinonaktifkan" in rows[1] and OLD in rows[1] and "admin@sapa.test" in rows[1]
    assert "Klaim dikembalikan ke antrean" in rows[0] and reg_no in rows[0]
    added = next(r for r in rows if NEW in r)
    assert "Kecamatan: - → Somba Opu" in added and "6281******001" in added
    # AND the page fits the office screen: nothing to scroll sideways
    assert admin.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0

    # WHEN the old officer, his page still open, tries to check the case
    refused = press(old, ACTION_LABELS["check"])
    # THEN he is refused, and the case did not move
    assert refused.status == 403
    case = next(k for k in stack.c.store.list_cases(limit=10_000) if k.reg_no == reg_no)
    assert case.state == "form_submitted"
    run = case.current_run(stack.c.sop)
    assert run is not None and run.claimed_by is None
    # AND the login page no longer offers him
    old.goto(f"{base}/staff/login")
    assert old.locator("option", has_text=OLD_NAME).count() == 0

    # WHEN the new officer logs in, finds the case on her worklist, takes it and checks it
    new = screen(NEW_NAME, base)
    open_case(new, base, reg_no)
    assert press(new, ACTION_LABELS["claim"]).status == 200
    assert f"ditangani {NEW_NAME}" in status(new)
    assert press(new, ACTION_LABELS["check"]).status == 200
    # THEN the case moved on, by her hand
    assert STATE_LABELS["checked"] in status(new)
    events = stack.c.store.events(case.id)
    assert [(e.event, e.actor_id) for e in events if e.event in ("claim_returned", "check")] == [
        ("claim_returned", "system"),
        ("check", NEW),
    ]
