"""Identity-Aware Proxy in front of the staff workspace: the officer is whoever IAP's signed
header (an ES256 JWT) names, checked against IAP's public keys, this backend's audience, IAP's
issuer and the expiry. Keys are generated here and served like IAP serves them: {kid: PEM}."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from google.auth import jwt
from google.auth.crypt.es256 import ES256Signer

from sapa.bootstrap import Container
from tests.key_server import KeyServer, pem_private, serving_keys

from .conftest import ADMIN, JSON, KABID, LOKET, OPERATOR, app_for, assert_unchanged, snapshot

AUDIENCE = "/projects/123456789/global/backendServices/987654321"
ISSUER = "https://cloud.google.com/iap"
KID = "iap-test-key-1"
HEADER = "X-Goog-IAP-JWT-Assertion"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_public(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def iap_key() -> ec.EllipticCurvePrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def key_server(iap_key: ec.EllipticCurvePrivateKey) -> Iterator[KeyServer]:
    keys = {KID: pem_public(iap_key), "iap-test-key-0": pem_public(new_key())}
    with serving_keys(keys, "/iap/verify/public_key") as served:
        yield served


@pytest.fixture
def iap(container: Container, key_server: KeyServer) -> KeyServer:
    """The container's settings with IAP in front (audience and key URL)."""
    container.settings = container.settings.model_copy(
        update={"iap_audience": AUDIENCE, "iap_certs_url": key_server.url}
    )
    key_server.hits.clear()
    return key_server


def assertion(
    key: ec.EllipticCurvePrivateKey,
    email: str,
    *,
    kid: str = KID,
    aud: str = AUDIENCE,
    iss: str = ISSUER,
    iat: float | None = None,
    exp: float | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": iss,
        "aud": aud,
        "email": email,
        "sub": f"accounts.google.com:{abs(hash(email))}",
        "iat": int(iat if iat is not None else now - 10),
        "exp": int(exp if exp is not None else now + 600),
    }
    signer = ES256Signer.from_string(pem_private(key), key_id=kid)
    return jwt.encode(signer, claims).decode()


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def client(container: Container) -> FlaskClient:
    return app_for("staff").test_client()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no csrf field on the page"
    return found.group(1)


# ---- a valid assertion ---------------------------------------------------------------------------


def test_a_valid_assertion_opens_the_worklist_of_the_officer_it_names(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
) -> None:
    # GIVEN IAP in front of the workspace and cases waiting for the counter and for the operator
    # WHEN a request comes with IAP's signed header naming the Somba Opu counter officer
    resp = client.get("/worklist", headers={**JSON, HEADER: assertion(iap_key, LOKET)})
    # THEN the worklist answers for him: the counter's cases, not the operator's
    assert resp.status_code == 200, resp.get_json()
    ids = {row["id"] for row in resp.get_json()["cases"]}
    assert cases["form_submitted"] in ids
    assert cases["forwarded"] not in ids
    # AND IAP's public keys were fetched from the configured URL to check it
    assert iap.hits
    # AND the same header names the SIAK operator to show the operator's worklist instead
    resp = client.get("/worklist", headers={**JSON, HEADER: assertion(iap_key, OPERATOR)})
    ids = {row["id"] for row in resp.get_json()["cases"]}
    assert cases["forwarded"] in ids
    assert cases["form_submitted"] not in ids


def test_a_valid_assertion_may_act_with_the_pages_csrf_token(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
) -> None:
    case_id = cases["form_submitted"]
    # IAP's email claim may carry the "accounts.google.com:" prefix of its user headers
    headers = {HEADER: assertion(iap_key, f"accounts.google.com:{LOKET}")}
    # GIVEN the counter officer behind IAP has opened the case page
    page = client.get(f"/cases/{case_id}", headers=headers)
    assert page.status_code == 200
    # WHEN he takes the case with the page's form
    resp = client.post(
        f"/cases/{case_id}/claim",
        data={"csrf": csrf_of(page.get_data(as_text=True))},
        headers={**JSON, **headers},
    )
    # THEN it is his
    assert resp.status_code == 200, resp.get_json()
    last = container.store.events(case_id)[-1]
    assert (last.event, last.actor_id) == ("claim", LOKET)


# ---- invalid assertions: 401, nothing done -------------------------------------------------------

OTHER_KEY = new_key()
# kind → (IAP's key, now) → the header's value (None: no header)
BAD: dict[str, Callable[[ec.EllipticCurvePrivateKey, float], str | None]] = {
    "expired": lambda k, now: assertion(k, LOKET, iat=now - 7200, exp=now - 3600),
    "not_yet_valid": lambda k, now: assertion(k, LOKET, iat=now + 3600, exp=now + 7200),
    "wrong_audience": lambda k, now: assertion(k, LOKET, aud="/projects/1/apps/another-app"),
    "wrong_issuer": lambda k, now: assertion(k, LOKET, iss="https://accounts.google.com"),
    "other_key_same_kid": lambda k, now: assertion(OTHER_KEY, LOKET),
    "other_key_unknown_kid": lambda k, now: assertion(OTHER_KEY, LOKET, kid="not-an-iap-key"),
    "other_key_no_kid": lambda k, now: jwt.encode(
        ES256Signer.from_string(pem_private(OTHER_KEY)), {"iss": ISSUER}
    ).decode(),
    "unsigned_alg_none": lambda k, now: (
        b64({"alg": "none", "kid": KID})
        + "."
        + b64({"iss": ISSUER, "aud": AUDIENCE, "email": LOKET, "iat": now, "exp": now + 600})
        + "."
    ),
    "signature_stripped": lambda k, now: assertion(k, LOKET).rsplit(".", 1)[0] + ".",
    "payload_swapped": lambda k, now: ".".join(
        [
            assertion(k, LOKET).split(".")[0],
            b64({"iss": ISSUER, "aud": AUDIENCE, "email": ADMIN, "iat": now, "exp": now + 600}),
            assertion(k, LOKET).split(".")[2],
        ]
    ),
    "garbage": lambda k, now: "not-a-jwt",
    "garbage_segments": lambda k, now: "a.b.c",
    "json_array_header": lambda k, now: "W10.e30.AAAA",
    "empty": lambda k, now: "",
    "missing": lambda k, now: None,
}


@pytest.mark.parametrize("kind", list(BAD))
def test_an_invalid_assertion_is_a_401_and_does_nothing(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
    kind: str,
) -> None:
    case_id = cases["form_submitted"]
    # GIVEN the counter officer's genuine csrf token (so only the assertion is wrong)
    good = {HEADER: assertion(iap_key, LOKET)}
    csrf = csrf_of(client.get(f"/cases/{case_id}", headers=good).get_data(as_text=True))
    before = snapshot(container, case_id)
    token = BAD[kind](iap_key, time.time())
    headers = {} if token is None else {HEADER: token}
    # WHEN requests come with a bad assertion (or none)
    reads = [
        client.get("/worklist", headers={**JSON, **headers}),
        client.get("/worklist", headers=headers),  # a browser, too: IAP answers, not a login
        client.get(f"/cases/{case_id}", headers={**JSON, **headers}),
    ]
    writes = [
        client.post(f"/cases/{case_id}/{action}", data={"csrf": csrf, **form}, headers=h)
        for action, form in (("claim", {}), ("reject", {"reason": "tidak valid"}))
        for h in ({**JSON, **headers}, headers)
    ]
    # THEN every one is a 401 with no data, and nothing was done
    for resp in reads + writes:
        assert resp.status_code == 401, (kind, resp.status_code, resp.get_data(as_text=True))
        assert resp.get_json()["error"] == "unauthorized"
        assert case_id not in resp.get_data(as_text=True)
    assert_unchanged(container, case_id, before)


def test_an_email_that_is_not_in_the_staff_directory_is_forbidden(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
) -> None:
    case_id = cases["form_submitted"]
    before = snapshot(container, case_id)
    # GIVEN a genuine IAP assertion for someone who is not an officer of the office
    headers = {**JSON, HEADER: assertion(iap_key, "stranger@gmail.com")}
    # WHEN they open the worklist, a case or try an action
    responses = [
        client.get("/worklist", headers=headers),
        client.get(f"/cases/{case_id}", headers=headers),
        client.post(f"/cases/{case_id}/claim", data={"csrf": "x"}, headers=headers),
    ]
    # THEN they are known to IAP but forbidden here, and nothing changed
    for resp in responses:
        assert resp.status_code == 403, resp.get_json()
        assert resp.get_json()["error"] == "forbidden"
    assert_unchanged(container, case_id, before)


def test_a_deactivated_officer_with_a_valid_assertion_is_forbidden_at_once(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
) -> None:
    """IAP decides who is signed in; SAPA decides what they may do."""
    from sapa.services import staff_admin

    headers = {**JSON, HEADER: assertion(iap_key, LOKET)}
    assert client.get("/worklist", headers=headers).status_code == 200
    # WHEN an admin deactivates the counter officer (IAP still lets him in)
    admin = container.staff.get("admin@sapa.test")
    assert admin is not None
    staff_admin.set_active(container, admin, LOKET, False)
    # THEN his next request, with the same genuine assertion, is forbidden
    resp = client.get("/worklist", headers=headers)
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    # AND reactivated, he may work again
    staff_admin.set_active(container, admin, LOKET, True)
    assert client.get("/worklist", headers=headers).status_code == 200


# ---- no development login behind IAP -------------------------------------------------------------


def test_with_iap_the_dev_login_is_gone_and_its_cookie_is_ignored(
    container: Container,
    cases: dict[str, str],
    key_server: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
    client: FlaskClient,
) -> None:
    # GIVEN an admin session cookie from the development login, taken before IAP was set up
    assert client.post("/login", data={"email": ADMIN}, headers=JSON).status_code == 200
    assert client.get_cookie("sapa_staff") is not None
    # WHEN IAP is put in front of the workspace
    container.settings = container.settings.model_copy(
        update={"iap_audience": AUDIENCE, "iap_certs_url": key_server.url}
    )
    # THEN the login page is not there (GET or POST) and gives no new cookie
    assert client.get("/login").status_code == 404
    fresh = app_for("staff").test_client()
    assert fresh.post("/login", data={"email": ADMIN}, headers=JSON).status_code == 404
    assert fresh.get_cookie("sapa_staff") is None
    # AND the old cookie alone opens nothing, and cannot act
    assert client.get("/worklist", headers=JSON).status_code == 401
    before = snapshot(container, cases["form_submitted"])
    resp = client.post(
        f"/cases/{cases['form_submitted']}/reject",
        data={"reason": "uji", "csrf": "x"},
        headers=JSON,
    )
    assert resp.status_code == 401
    assert_unchanged(container, cases["form_submitted"], before)
    # AND with IAP's header the header decides, not the cookie: the head of division's list
    resp = client.get("/worklist", headers={**JSON, HEADER: assertion(iap_key, KABID)})
    ids = {row["id"] for row in resp.get_json()["cases"]}
    assert cases["entered_in_siak"] in ids
    assert cases["form_submitted"] not in ids  # the admin (cookie) would not see it here either
    page = client.get(
        f"/cases/{cases['entered_in_siak']}", headers={HEADER: assertion(iap_key, KABID)}
    )
    assert "Kepala Bidang Pelayanan" in page.get_data(as_text=True)
    assert "Admin SAPA" not in page.get_data(as_text=True)


def test_the_approval_function_also_trusts_only_iap(
    container: Container,
    cases: dict[str, str],
    iap: KeyServer,
    iap_key: ec.EllipticCurvePrivateKey,
) -> None:
    case_id = cases["entered_in_siak"]
    approval = app_for("approval").test_client()
    staff = app_for("staff").test_client()
    good = {HEADER: assertion(iap_key, KABID)}
    csrf = csrf_of(staff.get(f"/cases/{case_id}", headers=good).get_data(as_text=True))
    before = snapshot(container, case_id)
    # WHEN the decision comes with a forged assertion
    forged = {HEADER: assertion(OTHER_KEY, KABID), **JSON}
    resp = approval.post(f"/{case_id}", data={"decision": "approve", "csrf": csrf}, headers=forged)
    # THEN it is refused and the case is as it was
    assert resp.status_code == 401
    assert_unchanged(container, case_id, before)
    # AND with IAP's genuine assertion the head of division approves
    resp = approval.post(
        f"/{case_id}", data={"decision": "approve", "csrf": csrf}, headers={**good, **JSON}
    )
    assert resp.status_code == 200, resp.get_json()
    assert container.store.get(case_id).state == "approved"
