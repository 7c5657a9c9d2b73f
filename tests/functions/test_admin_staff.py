"""staff /admin/staff: the officers page through the staff function's test client. Admin only,
CSRF on every POST, errors in Bahasa Indonesia beside their fields (HTML) or in `fields`
(JSON), a refused change changes nothing, and a deactivated officer can no longer act."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from sapa.bootstrap import Container
from sapa.domain.staff import LAST_ADMIN
from sapa.services import staff_admin
from tests.functions.conftest import JSON, Flow, Officer

ADMIN = "admin@sapa.test"
LOKET = "loket.sombaopu@sapa.test"
SOMBA_OPU = "730608"
NEW = "andi.loket@gowakab.go.id"
PAGES = (
    "/admin/staff",
    "/admin/staff/change",
    "/admin/staff/deactivate",
    "/admin/staff/reactivate",
)


def officers(c: Container) -> Any:
    return (c.store.staff_roster(), c.store.staff_events())


def errors_beside_fields(html: str) -> dict[str, str]:
    """The field errors a page shows: id "<form>-err-<field>" → text."""
    return dict(re.findall(r'<p class="error" id="([a-z0-9]+-err-[a-z]+)">([^<]*)</p>', html))


def officer_form(**over: Any) -> dict[str, Any]:
    return {
        "email": NEW,
        "name": "Andi Petugas",
        "roles": ["loket"],
        "kecamatan": SOMBA_OPU,
        "wa": "",
        **over,
    }


# ---- who may ----------------------------------------------------------------------------------


def test_the_officers_pages_are_403_for_other_roles_and_change_nothing(
    container: Container, login: Callable[[str], Officer]
) -> None:
    loket = login(LOKET)
    before = officers(container)
    answers = [loket.client.get("/admin/staff")] + [
        loket.post(path, json=False, **officer_form(email=LOKET)) for path in PAGES
    ]
    for resp in answers:
        assert resp.status_code == 403
        assert staff_admin.ADMIN_ONLY in resp.get_data(as_text=True)
    assert officers(container) == before


def test_posts_without_a_valid_csrf_token_are_403_and_change_nothing(
    container: Container, login: Callable[[str], Officer]
) -> None:
    admin = login(ADMIN)
    before = officers(container)
    for path in PAGES:
        form = officer_form(email=LOKET)
        missing = admin.client.post(path, data=form, headers=JSON)
        forged = admin.client.post(path, data={**form, "csrf": "not-it"}, headers=JSON)
        for resp in (missing, forged):
            assert resp.status_code == 403
            assert resp.get_json()["message"].startswith("Sesi formulir sudah berakhir")
    assert officers(container) == before


# ---- the page ---------------------------------------------------------------------------------


def test_the_page_lists_the_officers_with_their_forms_and_the_trail(
    login: Callable[[str], Officer],
) -> None:
    admin = login(ADMIN)
    resp = admin.client.get("/admin/staff")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Petugas Loket Somba Opu" in html and LOKET in html
    assert 'action="/admin/staff/deactivate"' in html and 'action="/admin/staff"' in html
    assert "Riwayat perubahan" in html and "dari berkas staf" in html  # the seed, on record
    # every inline style and script carries the page's nonce (no 'unsafe-inline')
    nonce = re.search(r"'nonce-([^']+)'", resp.headers["Content-Security-Policy"])
    assert nonce is not None
    assert html.count(f'nonce="{nonce.group(1)}"') == html.count("<style") + html.count("<script")
    body = admin.client.get("/admin/staff", headers=JSON).get_json()
    assert {o["email"] for o in body["officers"]} >= {ADMIN, LOKET}
    assert body["events"][0]["actor"] == "Sistem"


# ---- adding -----------------------------------------------------------------------------------


def test_a_refused_form_comes_back_with_each_error_beside_its_field_and_changes_nothing(
    container: Container, login: Callable[[str], Officer]
) -> None:
    admin = login(ADMIN)
    before = officers(container)
    resp = admin.post(
        "/admin/staff",
        json=False,
        **officer_form(email="andi@", roles=["loket", "lurah"], kecamatan="", wa="12"),
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert errors_beside_fields(html) == {
        "add-err-email": "Alamat e-mail tidak valid. Contoh: nama@gowakab.go.id.",
        "add-err-roles": "Peran tidak dikenal: lurah.",
        "add-err-kecamatan": "Kecamatan wajib dipilih untuk Petugas Loket Pelayanan.",
        "add-err-wa": "Nomor WhatsApp tidak valid. Contoh: 081234567890.",
    }
    assert 'value="andi@"' in html  # what was typed is kept
    assert officers(container) == before
    # AND a duplicate address is named as such
    dup = admin.post("/admin/staff", **officer_form(email=LOKET.upper()))
    assert dup.status_code == 422
    assert dup.get_json()["fields"] == {
        "email": "Alamat e-mail ini sudah terdaftar sebagai petugas."
    }
    assert officers(container) == before


def test_an_added_officer_can_log_in_and_the_page_says_what_was_done(
    container: Container, login: Callable[[str], Officer]
) -> None:
    admin = login(ADMIN)
    resp = admin.post("/admin/staff", json=False, **officer_form(wa="0812 3456 789"))
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/admin/staff?done=officer_added&claims=0"
    assert NEW not in resp.headers["Location"]  # no person in a URL
    page = admin.client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Petugas ditambahkan." in page
    assert "6281*****789" in page
    # AND the new officer is who SAPA says he is
    me = login(NEW).client.get("/worklist", headers=JSON)
    assert me.status_code == 200
    added = admin.post("/admin/staff", **officer_form(email="b@gowakab.go.id"))
    assert added.get_json()["officer"]["roles"] == ["loket"]


# ---- changing and deactivating ------------------------------------------------------------------


def test_a_deactivated_officer_is_refused_at_once_and_his_claim_goes_back(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN the counter officer, logged in, holding a case
    loket = login(LOKET)
    case = flow.to("form_submitted")
    taken = loket.post(f"/cases/{case.id}/claim")
    assert taken.status_code == 200
    # WHEN the admin deactivates him
    admin = login(ADMIN)
    resp = admin.post("/admin/staff/deactivate", email=LOKET)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["event"] == "officer_deactivated" and body["claims_returned"] == [case.reg_no]
    # THEN his next request is refused, and so is a new login
    refused = loket.post(f"/cases/{case.id}/check")
    assert refused.status_code == 403
    assert loket.client.get("/worklist", headers=JSON).status_code == 403
    assert login_status(admin.client.application.test_client(), LOKET) == 401
    assert container.store.get(case.id).state == "form_submitted"
    # AND the page says how many cases went back to the queue
    page = admin.post("/admin/staff/reactivate", json=False, email=LOKET)
    assert page.status_code == 303
    again = admin.post("/admin/staff/deactivate", json=False, email=LOKET)
    assert again.headers["Location"] == "/admin/staff?done=officer_deactivated&claims=0"


def login_status(client: FlaskClient, email: str) -> int:
    return client.post("/login", data={"email": email}, headers=JSON).status_code


def test_a_refused_change_is_shown_beside_the_officer_and_changes_nothing(
    container: Container, login: Callable[[str], Officer]
) -> None:
    admin = login(ADMIN)
    before = officers(container)
    # the last admin may not leave
    resp = admin.post("/admin/staff/deactivate", json=False, email=ADMIN)
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    found = re.search(r'<p class="error" id="o(\d+)-err-active">' + re.escape(LAST_ADMIN), html)
    assert found is not None
    # the message on top of the page leads to that officer's row
    assert f'<a href="#petugas-{found.group(1)}">Lihat Admin SAPA</a>' in html
    # nor give up the role (JSON: the reason in `fields`)
    resp = admin.post("/admin/staff/change", email=ADMIN, name="Admin SAPA", roles=["kabid"])
    assert resp.status_code == 422 and resp.get_json()["fields"] == {"roles": LAST_ADMIN}
    # a change filled in on an outdated page is refused
    resp = admin.post(
        "/admin/staff/change",
        json=False,
        email=LOKET,
        name="Nama Baru",
        roles=["loket"],
        kecamatan=SOMBA_OPU,
        revision="0" * 16,
    )
    assert resp.status_code == 409
    assert "baru saja diubah oleh admin lain" in resp.get_data(as_text=True)
    # a change with errors opens that officer's form with them
    resp = admin.post(
        "/admin/staff/change", json=False, email=LOKET, name="", roles=["loket"], kecamatan=""
    )
    assert resp.status_code == 422
    found = errors_beside_fields(resp.get_data(as_text=True))
    assert sorted(v for v in found.values()) == [
        "Kecamatan wajib dipilih untuk Petugas Loket Pelayanan.",
        "Nama wajib diisi.",
    ]
    assert "<details open>" in resp.get_data(as_text=True)
    # an unknown officer
    assert (
        admin.post("/admin/staff/deactivate", json=False, email="x@gowakab.go.id").status_code
        == 404
    )
    assert officers(container) == before


def test_a_change_is_applied_and_on_the_trail(
    container: Container, login: Callable[[str], Officer]
) -> None:
    admin = login(ADMIN)
    revision = container.store.staff_roster().get(LOKET).revision  # type: ignore[union-attr]
    resp = admin.post(
        "/admin/staff/change",
        json=False,
        email=LOKET,
        name="Andi Baru",
        roles=["loket"],
        kecamatan=SOMBA_OPU,
        revision=revision,
    )
    assert resp.headers["Location"] == "/admin/staff?done=officer_changed&claims=0"
    page = admin.client.get("/admin/staff").get_data(as_text=True)
    assert "Data petugas diubah" in page
    assert "Nama: Petugas Loket Somba Opu → Andi Baru" in page
