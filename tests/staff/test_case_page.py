"""What the case page offers each officer in each state: the step at hand's own action first and
primary, destructive ones after it, every field with a label of its own, the document the step
is decided on in the viewer, and "Keluar" on the page.

GIVEN a Somba Opu case in each state of the library (tests/staff/conftest.py) and each demo
officer, WHEN the officer opens the case (JSON and HTML), THEN the page offers exactly the
actions the officer may take, in that order. The expectation is read from sop_gowa.toml here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest

from sapa.bootstrap import Container

from .conftest import (
    ADMIN,
    DATA,
    KABID,
    KADIS,
    LIBRARY_STATES,
    LOKET,
    LOKET_ELSEWHERE,
    OPERATOR,
    VERIFIKATOR,
    Officer,
)

SOP = tomllib.loads((DATA / "sop_gowa.toml").read_text("utf-8"))
STEP_EVENT = {s["from_state"]: s["event"] for s in SOP["steps"] if s["from_state"]}
STEP_OF = {s["to_state"]: s["event"] for s in SOP["steps"]}
DESTRUCTIVE = {"return", "reject", "cancel"}
NOTHING = "Tidak ada tindakan untuk peran Anda"
OFFICERS = (LOKET, LOKET_ELSEWHERE, VERIFIKATOR, OPERATOR, KABID, KADIS, ADMIN)


class Page(HTMLParser):
    """The parts of the case page these tests read: labels, form fields, the buttons of the
    step card in order (with their classes), the viewer's frame and the header's forms."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[tuple[str, str]] = []  # (for, text)
        self.fields: list[tuple[str, str]] = []  # (tag/type, id)
        self.buttons: list[tuple[str, str]] = []  # (text, class) inside the step card
        self.summaries: list[str] = []  # the step card's collapsed actions
        self.frame: str | None = None
        self.header_buttons: list[str] = []
        self._label: list[str] | None = None
        self._label_for = ""
        self._in: list[str] = []
        self._button: list[str] | None = None
        self._button_class = ""
        self._summary: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "header":
            self._in.append("header")
        if tag == "section" and "step" in a.get("class", "").split():
            self._in.append("step")
        if tag == "label":
            self._label, self._label_for = [], a.get("for", "")
        if tag in ("input", "textarea", "select") and a.get("type") not in ("hidden",):
            self.fields.append((f"{tag}/{a.get('type', '')}", a.get("id", "")))
        if tag == "button":
            self._button, self._button_class = [], a.get("class", "")
        if tag == "summary":
            self._summary = []
        if tag == "iframe" and a.get("name") == "viewer":
            self.frame = a.get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label is not None:
            self.labels.append((self._label_for, " ".join("".join(self._label).split())))
            self._label = None
        if tag == "button" and self._button is not None:
            text = " ".join("".join(self._button).split())
            if "step" in self._in:
                self.buttons.append((text, self._button_class))
            if "header" in self._in:
                self.header_buttons.append(text)
            self._button = None
        if tag == "summary" and self._summary is not None:
            if "step" in self._in:
                self.summaries.append(" ".join("".join(self._summary).split()))
            self._summary = None
        if tag == "section" and "step" in self._in:
            self._in.remove("step")
        if tag == "header" and "header" in self._in:
            self._in.remove("header")

    def handle_data(self, data: str) -> None:
        for part in (self._label, self._button, self._summary):
            if part is not None:
                part.append(data)


def parsed(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def step_event(key: str) -> str | None:
    """The SOP event of the step that waits in library state `key`."""
    state, _, returned_from = key.partition("@")
    if state == "returned":
        return STEP_OF[returned_from]
    return STEP_EVENT.get(state)


@pytest.mark.parametrize("email", OFFICERS)
@pytest.mark.parametrize("key", LIBRARY_STATES)
def test_the_page_offers_the_steps_own_action_first_and_destructive_ones_last(
    container: Container,
    cases: dict[str, str],
    login: Callable[[str], Officer],
    key: str,
    email: str,
) -> None:
    # GIVEN a case in state `key`, WHEN the officer opens it
    officer = login(email)
    resp = officer.get(f"/cases/{cases[key]}")
    if email == LOKET_ELSEWHERE:
        assert resp.status_code == 403  # another kecamatan's case: not even shown
        return
    body = resp.get_json()
    page = parsed(officer.get(f"/cases/{cases[key]}", json=False).get_data(as_text=True))
    actions = [a["event"] for a in body["actions"]]
    kinds = {a["event"]: a["kind"] for a in body["actions"]}

    # THEN the page offers exactly what the officer may do (each checked as the action is)
    assert sorted(actions) == sorted(body["allowed"])
    # AND the step's own action, when offered, comes first and is the primary one
    own = step_event(key)
    if own in actions:
        assert actions[0] == own and kinds[own] == "primary"
        assert page.buttons[0][1].split()[0] == "primary", page.buttons
    assert [k for k in kinds.values()].count("primary") <= 1
    # AND the destructive ones come after every other action, and are not primary
    positions = [actions.index(a) for a in actions if a in DESTRUCTIVE]
    others = [actions.index(a) for a in actions if a not in DESTRUCTIVE]
    assert not positions or not others or min(positions) > max(others)
    assert all(kinds[a] == "danger" for a in actions if a in DESTRUCTIVE)
    # AND in the HTML: the primary action is a button, the others open with their own summary
    labels = {a["event"]: a["label"] for a in body["actions"]}
    shown = [labels[a] + "…" for a in actions if kinds[a] != "primary"]
    assert page.summaries[: len(shown)] == shown
    if own in actions:
        assert page.buttons[0][0] == labels[own]
    # AND "nothing for your role" is said only when there really is nothing to do
    html = officer.get(f"/cases/{cases[key]}", json=False).get_data(as_text=True)
    anything = page.buttons or page.summaries
    assert (NOTHING in html) == (not anything and not body["running"]), (key, email)
    # AND every field has a label of its own, and no two labels read the same
    texts = [t for _, t in page.labels]
    assert len(texts) == len(set(texts)), sorted(t for t in texts if texts.count(t) > 1)
    labelled = {f for f, _ in page.labels}
    assert all(i and i in labelled for _, i in page.fields), (page.fields, labelled)
    # AND the officer can log out from here
    assert "Keluar" in page.header_buttons


@pytest.mark.parametrize(
    ("key", "email", "shows"),
    [
        ("form_submitted", LOKET, "resident"),
        ("forwarded", OPERATOR, "resident"),
        ("entered_in_siak", KABID, "draft"),
        ("approved", KADIS, "draft"),
        ("signed", KADIS, "signed"),
        ("delivered", ADMIN, "signed"),
    ],
)
def test_the_viewer_shows_the_document_the_step_is_decided_on(
    container: Container,
    cases: dict[str, str],
    login: Callable[[str], Officer],
    key: str,
    email: str,
    shows: str,
) -> None:
    # GIVEN a case in state `key`, WHEN the officer opens it
    officer = login(email)
    case = container.store.get(cases[key])
    body = officer.case(case.id)
    page = parsed(officer.get(f"/cases/{case.id}", json=False).get_data(as_text=True))
    # THEN the viewer shows the resident's first document, the SIAK draft (the head of
    # division approves it, the head of office signs it) or, once signed, the signed document
    docs = body["viewer"]["documents"]
    focus = body["viewer"]["focus"]
    assert docs[focus]["kind"] == shows
    want = {"resident": case.documents[0], "draft": case.draft, "signed": case.signed}[shows]
    assert page.frame == f"/cases/{case.id}/documents/{focus}"
    # AND the frame's document is that file, served to be framed by the workspace only
    served = officer.client.get(page.frame)
    assert served.status_code == 200
    assert want is not None and served.get_data() == container.blobs.get(want.key)
    assert "frame-ancestors 'self'" in served.headers["Content-Security-Policy"]


def test_after_signing_the_page_links_the_signed_pdf_and_its_verification_page(
    container: Container, cases: dict[str, str], login: Callable[[str], Officer]
) -> None:
    # GIVEN a signed case, WHEN the head of office opens it
    case = container.store.get(cases["signed"])
    kadis = login(KADIS)
    body = kadis.case(case.id)
    html = kadis.get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    # THEN it links the signed PDF and the public page the QR code leads to
    signed = body["signed"]
    assert signed["verify_url"].startswith(container.settings.verify_base + "/d/")
    assert f'href="/cases/{case.id}/documents/{signed["n"]}"' in html
    assert f'href="{signed["verify_url"]}"' in html
    assert "Buka dokumen bertanda tangan (PDF)" in html
    # AND the verification page answers for it
    doc_id = signed["verify_url"].rsplit("/", 1)[1]
    assert container.store.get_key(f"doc-{doc_id}") == {"case_id": case.id}
    # AND what is left to do, revoking it, is offered; "nothing for your role" is not said
    assert "Cabut dokumen bertanda tangan" in html
    assert NOTHING not in html


@pytest.mark.parametrize(
    "path",
    ["/worklist", "/dashboard", "/admin/subject", "/admin/breach", "/admin/whatsapp", "case"],
)
def test_every_staff_page_has_keluar(
    cases: dict[str, str], login: Callable[[str], Officer], path: str
) -> None:
    admin = login(ADMIN)
    url = f"/cases/{cases['form_submitted']}" if path == "case" else path
    resp = admin.get(url, json=False)
    assert resp.status_code == 200, url
    page = parsed(resp.get_data(as_text=True))
    assert page.header_buttons == ["Keluar"]
    assert re.search(r'action="/logout"', resp.get_data(as_text=True))


def body_of(resp: Any) -> dict[str, Any]:
    return dict(resp.get_json())
