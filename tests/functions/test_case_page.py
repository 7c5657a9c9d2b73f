"""staff: the case page as each officer sees it, through the staff function (HTML and JSON):
people by name, the audit trail in Bahasa Indonesia."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable

from sapa.bootstrap import Container
from sapa.domain.texts import AUDIT_EVENT_LABELS, STATE_LABELS
from tests.functions.conftest import Flow, Officer

LOKET = "loket.sombaopu@sapa.test"
KABID = "kabid@sapa.test"
KADIS = "kadis@sapa.test"
ADMIN = "admin@sapa.test"


def visible_text(page: str) -> str:
    """What a reader sees of a page: no tags, no attributes, no style or script blocks."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def section(page: str, heading: str) -> str:
    """The part of the page from the heading `heading` to the next h2."""
    start = page.index(f">{heading}</h2>")
    end = page.find("<h2", start)
    return page[start : end if end > 0 else len(page)]


def test_the_audit_trail_names_every_event_and_state_in_indonesian(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case taken through every step to the signature
    case = flow.sign(flow.to("approved"))
    events = container.store.events(case.id)
    assert {"greet", "send_link", "submit_form", "check", "sign"} <= {e.event for e in events}

    # WHEN the head of office opens it
    kadis = login(KADIS)
    body = kadis.case(case.id)
    page = kadis.get(f"/cases/{case.id}", json=False).get_data(as_text=True)

    # THEN every event of the trail is shown by its Indonesian label, with its states'
    trail = visible_text(section(page, "Jejak audit"))
    for e in events:
        assert AUDIT_EVENT_LABELS[e.event] in trail, e.event
        assert STATE_LABELS[e.to_state] in trail
    # AND no internal code is left: not the events', the states' or the system's
    codes = {e.event for e in events} | {e.to_state for e in events} | {"system"}
    words = set(re.findall(r"[a-z_]+", trail))
    assert not codes & words, codes & words
    # AND the JSON keeps the codes beside the labels (what scripts and the driver read)
    assert [e["event"] for e in body["events"]] == [e.event for e in events]
    labelled = {e["event"]: e["event_label"] for e in body["events"]}
    assert labelled["submit_form"] == "Buku Tamu dikirim pemohon"


def test_officers_are_named_with_their_e_mail_on_hover(
    container: Container, login: Callable[[str], Officer], flow: Flow
) -> None:
    # GIVEN a case the counter officer has claimed and checked, and one he holds again
    case = flow.to("form_submitted")
    flow.act(case, LOKET, "claim")
    flow.act(case, LOKET, "check")
    flow.act(case, LOKET, "claim")

    # WHEN the head of division opens it
    page = login(KABID).get(f"/cases/{case.id}", json=False).get_data(as_text=True)
    text = visible_text(page)

    # THEN the officer is named in the status, the timeline and the audit trail, the e-mail
    # only in a title (shown on hover), never as the text
    named = f'<span title="{LOKET}">Petugas Loket Somba Opu</span>'
    assert "ditangani " + named in page
    assert named in section(page, "Linimasa terhadap mutu baku")
    assert named in section(page, "Jejak audit")
    assert "@sapa.test" not in text
    # AND SAPA's own moves and the resident's are named as such, not as codes
    trail = visible_text(section(page, "Jejak audit"))
    assert "Sistem SAPA" in trail and "Pemohon" in trail
