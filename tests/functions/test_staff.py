"""staff: the officers' workspace (dev login, worklist, case page, SOP actions)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from sapa.bootstrap import Container
from sapa.dev.driver import walk
from sapa.domain.texts import text
from tests.conftest import RecordingQueue
from tests.fakes import FakeWhatsApp
from tests.functions.conftest import (
    BONTONOMPO,
    JSON,
    NIK,
    OTHER_WA_ID,
    TS,
    WA_ID,
    FlaskDesk,
    Flow,
    Officer,
    change,
    deliver_task,
    snapshot,
    text_body,
    webhook_body,
)

LOKET = "loket.sombaopu@sapa.test"
LOKET_ELSEWHERE = "loket.bontonompo@sapa.test"
SESSION_SECONDS = 8 * 3600  # a CSRF token is valid for a working day


# ---- login and session ----------------------------------------------------------------------


def test_dev_login_gives_a_csrf_token_and_a_session_cookie(
    login: Callable[[str], Officer],
) -> None:
    officer = login(LOKET)
    body = officer.login.get_json()
    assert body["email"] == LOKET
    assert body["roles"] == ["loket"]
    assert len(officer.csrf) >= 24
    cookie = officer.login.headers["Set-Cookie"]
    assert cookie.startswith("sapa_staff=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert officer.client.get_cookie("sapa_staff") is not None
    # the cookie is a session: the worklist opens with it
    assert officer.client.get("/worklist", headers=JSON).status_code == 200


def test_login_with_an_unknown_email_is_refused(
    client_for: Callable[[str], FlaskClient],
) -> None:
    client = client_for("staff")
    resp = client.post("/login", data={"email": "nobody@sapa.test"}, headers=JSON)
    assert resp.status_code == 401
    assert client.get_cookie("sapa_staff") is None


def test_without_a_session_json_gets_401_and_a_browser_is_sent_to_login(
    client_for: Callable[[str], FlaskClient], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    client = client_for("staff")
    api = client.get("/worklist", headers=JSON)
    assert api.status_code == 401
    assert api.get_json()["error"] == "unauthorized"
    page = client.get(f"/cases/{case.id}")
    assert page.status_code == 303
    assert page.headers["Location"].endswith("/login")
    action = client.post(f"/cases/{case.id}/claim", data={"csrf": "x"}, headers=JSON)
    assert action.status_code == 401


def test_a_forged_session_cookie_is_no_session(
    client_for: Callable[[str], FlaskClient], flow: Flow
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    case = flow.to("form_submitted")
    client = client_for("staff")
    forged = URLSafeTimedSerializer("guess", salt="sapa.staff").dumps(
        {"email": "admin@sapa.test", "csrf": "x"}
    )
    client.set_cookie("sapa_staff", forged)
    assert client.get("/worklist", headers=JSON).status_code == 401
    resp = client.post(f"/cases/{case.id}/reject", data={"csrf": "x", "reason": "r"}, headers=JSON)
    assert resp.status_code == 401
    assert flow.c.store.get(case.id).state == "form_submitted"


def test_an_action_without_csrf_is_forbidden_and_changes_nothing(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    officer = login(LOKET)
    before = snapshot(container, case.id)
    missing = officer.act(case, "claim", csrf=False)
    wrong = officer.client.post(f"/cases/{case.id}/claim", data={"csrf": "not-it"}, headers=JSON)
    non_ascii = officer.client.post(
        f"/cases/{case.id}/claim", data={"csrf": "t\u00f6ken"}, headers=JSON
    )
    assert missing.status_code == 403
    assert missing.get_json()["error"] == "forbidden"
    assert wrong.status_code == 403
    assert non_ascii.status_code == 403
    assert snapshot(container, case.id) == before


def csrf_token_issued_ago(c: Container, email: str, seconds: int) -> str:
    """A CSRF token for `email`, genuinely signed with the service's secret and salt, but issued
    `seconds` ago (itsdangerous stamps with the real time.time(), which FixedClock cannot age:
    the signer answers a past timestamp instead)."""
    age = seconds

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    return URLSafeTimedSerializer(
        c.settings.secret("session_secret"), salt="sapa.csrf", signer=PastSigner
    ).dumps(email)


def test_a_csrf_token_of_another_officer_or_forged_or_expired_does_not_work(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case the Somba Opu counter officer may claim, and his logged-in browser
    case = flow.to("form_submitted")
    mine = login(LOKET)
    before = snapshot(container, case.id)
    # AND tokens that are not his: another officer's (a real, valid token, just not bound to
    # him), his own with a tampered signature, one signed with a guessed secret, his session
    # cookie (signed, but for another purpose), and his own issued longer ago than 8 hours
    theirs = login(LOKET_ELSEWHERE).csrf
    head, sig = mine.csrf.rsplit(".", 1)
    tampered = f"{head}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    guessed = URLSafeTimedSerializer("guess", salt="sapa.csrf").dumps(LOKET)
    cookie = mine.client.get_cookie("sapa_staff")
    assert cookie is not None
    expired = csrf_token_issued_ago(container, LOKET, SESSION_SECONDS + 60)
    # (sanity: only its age is wrong: with a longer max_age the same serializer takes it)
    real = URLSafeTimedSerializer(container.settings.secret("session_secret"), salt="sapa.csrf")
    assert real.loads(expired, max_age=SESSION_SECONDS + 3600) == LOKET
    # WHEN he posts with each of them, in the form and in the header
    for token in (theirs, tampered, guessed, cookie.value, expired):
        for resp in (
            mine.client.post(f"/cases/{case.id}/claim", data={"csrf": token}, headers=JSON),
            mine.client.post(f"/cases/{case.id}/claim", headers={**JSON, "X-CSRF-Token": token}),
        ):
            # THEN each is refused as a CSRF failure (not for his role: he may claim this case)
            assert resp.status_code == 403
            assert resp.get_json()["message"] == text("csrf")
    # AND nothing changed
    assert snapshot(container, case.id) == before
    # AND a token issued a little under 8 hours ago still works, in the header form too
    fresh = csrf_token_issued_ago(container, LOKET, SESSION_SECONDS - 60)
    ok = mine.client.post(f"/cases/{case.id}/claim", headers={**JSON, "X-CSRF-Token": fresh})
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_a_csrf_token_of_the_same_officer_from_another_login_works(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # The token is stateless: a signature over the officer's e-mail (valid 8 h), not a value
    # kept in one session. So a token from the same officer's other login (another tab or
    # browser) is accepted. That is no weakness: CSRF is a third-party site making the
    # officer's browser act for it, and that site can read no token at all; a token of this
    # officer only lets him do what he may do anyway. What must fail, another officer's
    # token, a forged or an expired one, is tested above.
    case = flow.to("form_submitted")
    mine, again = login(LOKET), login(LOKET)
    resp = mine.client.post(f"/cases/{case.id}/claim", data={"csrf": again.csrf}, headers=JSON)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    claims = [e.actor_id for e in container.store.events(case.id) if e.event == "claim"]
    assert claims == [LOKET]


# ---- authorisation and the state machine ------------------------------------------------------


def test_a_loket_of_another_kecamatan_may_not_act_on_a_somba_opu_case(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a Somba Opu case waiting for the counter officer
    case = flow.to("form_submitted")
    before = snapshot(container, case.id)
    officer = login(LOKET_ELSEWHERE)
    # WHEN the Bontonompo counter officer tries to take or check it
    for action in ("claim", "check"):
        resp = officer.act(case, action)
        # THEN he is refused: it is not his kecamatan
        assert resp.status_code == 403, (action, resp.get_json())
        assert "kecamatan" in resp.get_json()["message"]
    # AND he may not even look at it
    assert officer.client.get(f"/cases/{case.id}", headers=JSON).status_code == 403
    assert snapshot(container, case.id) == before


def test_an_illegal_transition_is_a_409_that_names_case_state_event_and_actor(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case in form_submitted (waiting for the counter officer's check)
    case = flow.to("form_submitted")
    before = snapshot(container, case.id)
    # WHEN the head of division tries to approve it
    resp = login("kabid@sapa.test").act(case, "approve")
    # THEN it is a conflict, explained in Indonesian, naming case, state, event and actor
    assert resp.status_code == 409, resp.get_json()
    body = resp.get_json()
    assert body["error"] == "illegal_transition"
    assert body["case_id"] == case.id
    assert body["state"] == "form_submitted"
    assert body["event"] == "approve"
    assert body["actor"] == "kabid@sapa.test"
    assert "tidak dapat dilakukan" in body["message"]
    assert case.reg_no in body["message"]
    assert "approve" in body["message"]
    # AND nothing changed
    assert snapshot(container, case.id) == before


def test_an_illegal_transition_in_the_browser_is_a_409_page(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    officer = login("kabid@sapa.test")
    resp = officer.client.post(f"/cases/{case.id}/approve", data={"csrf": officer.csrf})
    assert resp.status_code == 409
    assert "tidak dapat dilakukan" in resp.get_data(as_text=True)


def test_another_roles_step_is_refused_by_the_state_machine(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case waiting for the counter officer's check
    case = flow.to("form_submitted")
    before = snapshot(container, case.id)
    # WHEN the SIAK operator tries to do the counter's step
    resp = login("operator.siak@sapa.test").act(case, "check")
    # THEN the state machine refuses it, naming his role's move
    assert resp.status_code == 409
    body = resp.get_json()
    assert (body["event"], body["actor"], body["state"]) == (
        "check",
        "operator.siak@sapa.test",
        "form_submitted",
    )
    assert snapshot(container, case.id) == before


def test_an_unknown_action_changes_nothing(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    before = snapshot(container, case.id)
    resp = login(LOKET).act(case, "teleport")
    assert resp.status_code == 409
    assert resp.get_json()["event"] == "teleport"
    assert snapshot(container, case.id) == before


def test_the_loket_claims_and_checks_a_case(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a submitted Somba Opu case and the Somba Opu counter officer
    case = flow.to("form_submitted")
    officer = login(LOKET)
    # WHEN he takes it and checks it
    claim = officer.act(case, "claim")
    check = officer.act(case, "check")
    # THEN both succeed and the case is checked, by him, in the audit trail
    assert claim.status_code == 200, claim.get_json()
    assert check.status_code == 200, check.get_json()
    assert check.get_json()["case"]["state"] == "checked"
    stored = container.store.get(case.id)
    assert stored.state == "checked"
    events = [(e.event, e.actor_id) for e in container.store.events(case.id)]
    assert ("claim", LOKET) in events
    assert ("check", LOKET) in events
    # AND a browser post answers with a redirect to the case page
    contact = officer.client.post(f"/cases/{case.id}/contact", data={"csrf": officer.csrf})
    assert contact.status_code == 303
    assert contact.headers["Location"].endswith(f"/cases/{case.id}")
    assert container.store.get(case.id).state == "contacted"


def test_a_case_claimed_by_one_officer_cannot_be_checked_by_another(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    from sapa.ports import StaffMember

    case = flow.to("form_submitted")
    assert login(LOKET).act(case, "claim").status_code == 200
    # a second Somba Opu counter officer (not in the demo directory) tries to check it
    second = StaffMember("loket2.sombaopu@sapa.test", "Loket 2", ("loket",), "730608")
    directory = container.staff
    original = directory.get
    directory.get = lambda email: second if email == second.email else original(email)  # type: ignore[method-assign]
    resp = login(second.email).act(case, "check")
    assert resp.status_code == 409
    assert container.store.get(case.id).state == "form_submitted"


def test_a_reason_is_required_to_reject(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    resp = login(LOKET).act(case, "reject")
    assert resp.status_code == 422
    assert "reason" in resp.get_json()["fields"]
    assert container.store.get(case.id).state == "form_submitted"


# ---- reading --------------------------------------------------------------------------------


def test_the_worklist_shows_only_cases_for_the_officers_role_and_kecamatan(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a Somba Opu case waiting for the counter, one in Bontonompo waiting for the counter,
    # a Somba Opu case waiting for the resident, and one waiting for the verifier
    mine = flow.to("form_submitted")
    elsewhere = flow.to("form_submitted", wa_id=OTHER_WA_ID, kecamatan=BONTONOMPO)
    with_resident = flow.to("link_sent", wa_id="6281111111111")
    for_verifier = flow.to("contacted", wa_id="6282222222222")

    # WHEN each officer opens the worklist
    def ids(email: str) -> set[str]:
        resp = login(email).client.get("/worklist", headers=JSON)
        assert resp.status_code == 200
        return {row["id"] for row in resp.get_json()["cases"]}

    # THEN each sees exactly the cases waiting for him
    assert ids(LOKET) == {mine.id}
    assert ids(LOKET_ELSEWHERE) == {elsewhere.id}
    assert ids("verifikasi@sapa.test") == {for_verifier.id}
    assert ids("kabid@sapa.test") == set()
    assert with_resident.id not in ids(LOKET)


def test_the_worklist_page_is_html_in_indonesian(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    resp = login(LOKET).client.get("/worklist")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Daftar kerja" in html
    assert case.reg_no in html
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_case_page_carries_the_security_headers(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    resp = login(LOKET).client.get(f"/cases/{case.id}")
    assert resp.status_code == 200
    assert resp.mimetype == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert case.reg_no in resp.get_data(as_text=True)


def test_the_case_json_shows_the_nik_only_to_roles_that_need_it(
    login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    loket = login(LOKET).client.get(f"/cases/{case.id}", headers=JSON).get_json()
    assert loket["case"]["form"]["nik"] == NIK
    assert "check" in loket["allowed"]
    kabid = login("kabid@sapa.test").client.get(f"/cases/{case.id}", headers=JSON)
    assert kabid.status_code == 200
    assert kabid.get_json()["case"]["form"]["nik"] != NIK
    assert NIK not in kabid.get_data(as_text=True)


def test_a_document_of_the_case_is_served_inline_with_security_headers(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    case = flow.to("form_submitted")
    client = login(LOKET).client
    resp = client.get(f"/cases/{case.id}/documents/0")
    assert resp.status_code == 200
    assert resp.get_data() == container.blobs.get(case.documents[0].key)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/cases/{case.id}/documents/99").status_code == 404


def test_logout_needs_csrf_and_ends_the_session(login: Callable[[str], Officer]) -> None:
    officer = login(LOKET)
    assert officer.client.post("/logout", data={}).status_code == 403
    resp = officer.client.post("/logout", data={"csrf": officer.csrf})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/login")
    assert officer.client.get("/worklist", headers=JSON).status_code == 401


def test_a_cookie_kept_after_logout_no_longer_works(
    container: Container, client_for: Callable[[str], FlaskClient], login: Callable[[str], Officer]
) -> None:
    # GIVEN an admin's session cookie and CSRF token, copied before logging out (an attacker's
    # copy, or a shared computer's)
    admin = login("admin@sapa.test")
    cookie = admin.client.get_cookie("sapa_staff")
    assert cookie is not None
    stolen = cookie.value
    assert admin.client.post("/logout", data={"csrf": admin.csrf}).status_code == 303
    # WHEN the copy is used for an admin search
    other = client_for("staff")
    other.set_cookie("sapa_staff", stolen)
    resp = other.post("/admin/subject", data={"csrf": admin.csrf, "nik": NIK}, headers=JSON)
    # THEN the session is over: 401, whatever its signature and age say
    assert resp.status_code == 401
    assert other.get("/worklist", headers=JSON).status_code == 401
    # AND a new login of the same officer works (only that session ended)
    again = login("admin@sapa.test")
    assert again.client.get("/worklist", headers=JSON).status_code == 200


def test_pages_run_only_their_own_inline_code(login: Callable[[str], Officer], flow: Flow) -> None:
    # GIVEN pages with inline styles (every page) and an admin page with tables
    admin = login("admin@sapa.test")
    case = flow.to("form_submitted")
    nonces = []
    for path in ("/worklist", f"/cases/{case.id}", "/admin/whatsapp", "/admin/breach"):
        resp = admin.client.get(path)
        assert resp.status_code == 200, path
        csp = resp.headers["Content-Security-Policy"]
        html = resp.get_data(as_text=True)
        # THEN no 'unsafe-inline': the inline blocks carry this response's nonce, and no
        # element carries a style attribute (which only 'unsafe-inline' would allow)
        assert "unsafe-inline" not in csp
        (nonce,) = set(re.findall(r"'nonce-([^']+)'", csp))
        assert html.count("<style") == html.count(f'<style nonce="{nonce}"')
        assert html.count("<script") == html.count(f'<script nonce="{nonce}"')
        assert " style=" not in html
        nonces.append(nonce)
    assert len(set(nonces)) == len(nonces)  # a fresh nonce per response


# ---- the whole SOP through the functions --------------------------------------------------------


def test_a_case_walks_the_whole_sop_through_the_functions(
    container: Container,
    login: Callable[[str], Officer],
    queue: RecordingQueue,
    wa: FakeWhatsApp,
    run_task: Callable[..., Any],
    post_webhook: Callable[..., Any],
) -> None:
    # GIVEN a resident's greeting on the webhook
    assert post_webhook(text_body("wamid.walk.1", "Halo")).status_code == 200
    case = container.store.find_open("730608", WA_ID)
    assert case is not None
    reported: set[str] = set()

    def background() -> None:
        """Cloud Tasks delivers every queued task to its function; the resident's phone
        reports each document it got delivered, through the webhook, as Meta does."""
        while tasks := queue.take():
            for task in tasks:
                assert deliver_task(run_task, task).status_code == 200, task.kind
        for m in wa.sent:
            if m.kind == "document" and m.wamid not in reported:
                reported.add(m.wamid)
                status = {
                    "id": m.wamid,
                    "status": "delivered",
                    "timestamp": TS,
                    "recipient_id": m.to,
                }
                body = webhook_body(change([], statuses=[status], contacts=[]))
                assert post_webhook(body).status_code == 200

    # WHEN sapa.dev.driver walks it along the SOP: the resident's form through the guest-book
    # function, each officer claiming and acting on the staff function
    end = walk(FlaskDesk(container, login, background), case.id, "delivered")

    # THEN it is delivered, every step done by its role's officer, in the SOP's order
    assert end.state == "delivered"
    trail = [(e.event, e.actor_id) for e in container.store.events(case.id) if e.event != "claim"]
    steps = [(event, who) for event, who in trail if "@" in who]
    assert steps == [
        ("check", "loket.sombaopu@sapa.test"),
        ("contact", "loket.sombaopu@sapa.test"),
        ("forward", "verifikasi@sapa.test"),
        ("enter_siak", "operator.siak@sapa.test"),
        ("approve", "kabid@sapa.test"),
        ("sign_requested", "kadis@sapa.test"),
        ("sign", "kadis@sapa.test"),
    ]
    events = [event for event, _ in trail]
    assert events.index("send_link") < events.index("submit_form") < events.index("check")
    assert events[-1] == "deliver"
    # AND the resident got the signed document on WhatsApp, once
    assert [m.kind for m in wa.sent].count("document") == 1
