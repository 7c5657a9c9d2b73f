"""Every webhook body that others wrote (tests/fixtures/meta-webhooks: Meta's documentation
examples and five client libraries' fixtures, some captured from live numbers; SOURCES.md
there names each origin) posted signed to the real webhook of a running stack, as Meta would.

Each body is re-addressed at test time, never edited on disk: its service number becomes
Somba Opu's, every resident number or business-scoped user id (BSUID) in it a fresh one, so
that no two files share a resident, and every timestamp now (a live delivery's; SAPA reads the
24-hour window from it). What each kind must do is asserted per file.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from sapa.domain.texts import text
from tests.conftest import ROOT
from tests.whatsapp.conftest import PNID, SOMBA_OPU, Rig

FIXTURES = ROOT / "tests" / "fixtures" / "meta-webhooks"
# Kept byte for byte as the project's shared corpus holds them (checked below when present).
SHARED = ROOT.parent / "shared" / "fixtures" / "meta-webhooks"

# A resident's message: opens a case and the guest-book link goes back.
REQUEST = "request"
# ... of a kind SAPA cannot read: also tells the resident what it can read.
UNREADABLE = "unreadable"
# ... a voice note, a video, a sticker: also asks for a photo or a PDF.
MEDIA_UNSUPPORTED = "media_unsupported"
# About another message or the resident's account (reaction, edit, revoke, system notice):
# attaches to the resident's case, never opens one.
ABOUT = "about"
ECHO = "echo"  # an officer typed it in the WhatsApp Business app: the office's message
STATUS = "status"  # delivery statuses only
NOTICE = "notice"  # account, number, template notices and value-level errors: for the admin
IDENTITY = "identity"  # a resident's BSUID changed
IGNORED = "ignored"  # acknowledged, nothing to do (history sync, calls, groups, new fields)

EXPECTED: dict[str, str] = {
    "devlooped-audio-1.json": MEDIA_UNSUPPORTED,
    "devlooped-button-1.json": REQUEST,
    "devlooped-contacts-1.json": REQUEST,
    "devlooped-contacts-2.json": REQUEST,
    "devlooped-document-1.json": REQUEST,
    "devlooped-image-1.json": REQUEST,
    "devlooped-interactive-button_reply-1.json": REQUEST,
    "devlooped-interactive-list_reply-1.json": REQUEST,
    "devlooped-interactive-nfm_reply-1.json": REQUEST,
    "devlooped-location-1.json": REQUEST,
    "devlooped-reaction-1.json": ABOUT,
    "devlooped-status-delivered-1.json": STATUS,
    "devlooped-status-sent-1.json": STATUS,
    "devlooped-status-sent-2.json": STATUS,
    "devlooped-status-sent-errors-1.json": STATUS,
    "devlooped-text-1.json": REQUEST,
    "devlooped-unsupported-1.json": UNREADABLE,
    "devlooped-video-1.json": MEDIA_UNSUPPORTED,
    "meta-errors-1.json": NOTICE,
    "meta-history-1.json": IGNORED,
    "meta-history-media-1.json": IGNORED,
    "meta-image-1.json": REQUEST,
    "meta-message_template_status_update-1.json": NOTICE,
    "meta-smb_message_echoes-1.json": ECHO,
    "meta-status-delivered-1.json": STATUS,
    "meta-status-delivered-bsuid-1.json": STATUS,
    "meta-status-failed-1.json": STATUS,
    "meta-status-sent-1.json": STATUS,
    "meta-status-sent-2.json": STATUS,
    "meta-text-1.json": REQUEST,
    "meta-text-bsuid-1.json": REQUEST,
    "meta-unsupported-1.json": UNREADABLE,
    "netflie-button-referral-1.json": REQUEST,
    "netflie-contacts-1.json": REQUEST,
    "netflie-location-1.json": REQUEST,
    "netflie-status-delivered-1.json": STATUS,
    "netflie-status-failed-1.json": STATUS,
    "netflie-system-1.json": ABOUT,
    "netflie-text-bsuid-nofrom-1.json": REQUEST,
    "netflie-text-noprofile-1.json": REQUEST,
    "pius-account_settings_update-1.json": IGNORED,
    "pius-batch-multi-1.json": REQUEST,
    "pius-group_lifecycle_update-1.json": IGNORED,
    "pius-text-referred_product-1.json": REQUEST,
    "pius-unknown_field-1.json": IGNORED,
    "pywa-account_update-1.json": NOTICE,
    "pywa-button-1.json": REQUEST,
    "pywa-calls-connect-1.json": IGNORED,
    "pywa-calls-status-1.json": IGNORED,
    "pywa-calls-terminate-1.json": NOTICE,
    "pywa-edit-1.json": ABOUT,
    "pywa-image-url-1.json": REQUEST,
    "pywa-interactive-call_permission_reply-1.json": REQUEST,
    # an interactive reply Meta could not read (its value-level errors say so)
    "pywa-interactive-errors-1.json": UNREADABLE,
    "pywa-interactive-list_reply-1.json": REQUEST,
    "pywa-interactive-nfm_reply-1.json": REQUEST,
    "pywa-location-1.json": REQUEST,
    "pywa-order-1.json": REQUEST,
    "pywa-reaction-removed-1.json": ABOUT,
    "pywa-revoke-1.json": ABOUT,
    "pywa-smb_message_echoes-1.json": ECHO,
    "pywa-status-failed-1.json": STATUS,
    "pywa-status-played-1.json": STATUS,
    "pywa-status-sent-tracker-1.json": STATUS,
    "pywa-sticker-1.json": MEDIA_UNSUPPORTED,
    "pywa-system-identity-1.json": ABOUT,
    "pywa-system-number-1.json": ABOUT,
    "pywa-template_category_update-1.json": NOTICE,
    "pywa-text-forwarded-1.json": REQUEST,
    "pywa-unsupported-1.json": UNREADABLE,
    "pywa-user_preferences-1.json": IGNORED,
    "restfb-account_review_update-1.json": NOTICE,
    "restfb-account_update-1.json": NOTICE,
    "restfb-business_username_update-1.json": NOTICE,
    "restfb-contacts-1.json": REQUEST,
    "restfb-contacts-bsuid-1.json": REQUEST,
    "restfb-group_participants_update-1.json": IGNORED,
    "restfb-message_template_status_update-1.json": NOTICE,
    "restfb-phone_number_name_update-1.json": NOTICE,
    "restfb-phone_number_quality_update-1.json": NOTICE,
    "restfb-status-delivered-bsuid-1.json": STATUS,
    "restfb-status-failed-1.json": STATUS,
    "restfb-status-read-group-1.json": STATUS,
    "restfb-status-sent-1.json": STATUS,
    "restfb-sticker-1.json": MEDIA_UNSUPPORTED,
    "restfb-system-bsuid-1.json": IDENTITY,
    "restfb-text-bsuid-group-1.json": IGNORED,  # a group chat, not a resident writing to us
    "restfb-text-referral-1.json": REQUEST,
    "restfb-unknown-1.json": UNREADABLE,
    "restfb-user_id_update-1.json": IDENTITY,
}

# Keys whose value names the resident (or, for echoes, the business number: re-addressed
# as well, harmlessly). user_id/parent_user_id/previous/current are BSUIDs.
_PHONE_KEYS = {"from", "wa_id", "recipient_id", "to"}
_BSUID_KEYS = {
    "from_user_id",
    "user_id",
    "to_user_id",
    "recipient_user_id",
    "parent_user_id",
    "from_parent_user_id",
    "to_parent_user_id",
    "recipient_parent_user_id",
    "previous",
    "current",
}
_BSUID_IN_TEXT = re.compile(r"\b[A-Z]{2}\.(?:ENT\.)?\d{8,}\b")
_fresh = itertools.count(1)


def _identities(node: Any, key: str = "") -> set[tuple[str, str]]:
    """(kind, value) of every resident identity in the body."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            found |= _identities(v, k)
    elif isinstance(node, list):
        for v in node:
            found |= _identities(v, key)
    elif isinstance(node, str) and node:
        if key in _BSUID_KEYS:
            found.add(("bsuid", node))
        elif key in _PHONE_KEYS:
            found.add(("phone", node))
    return found


def readdress(raw: bytes, now: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """The body with Somba Opu's service number, fresh residents and (given `now`, epoch
    seconds) every timestamp moved to now, as a live delivery would carry; the old → new map
    of residents."""
    body = json.loads(raw)
    mapping: dict[str, str] = {}
    found = _identities(body) | {("bsuid", v) for v in _BSUID_IN_TEXT.findall(raw.decode())}
    for kind, value in sorted(found):
        n = next(_fresh)
        if kind == "bsuid":
            mapping[value] = f"ID.{'ENT.' if '.ENT.' in value else ''}7306{n:016d}"
        else:
            mapping[value] = f"62812{n:08d}"
    text_ = json.dumps(body, ensure_ascii=False)
    # longest first, as whole tokens: a system notice names old and new ids in its text too
    for old in sorted(mapping, key=len, reverse=True):
        text_ = re.sub(rf"(?<![A-Za-z0-9_.]){re.escape(old)}(?![A-Za-z0-9_])", mapping[old], text_)
    body = json.loads(text_)

    def service_number(node: Any) -> None:
        if isinstance(node, dict):
            meta = node.get("metadata")
            if isinstance(meta, dict) and "phone_number_id" in meta:
                meta["phone_number_id"] = PNID
            if now and isinstance(node.get("timestamp"), str | int):
                node["timestamp"] = now
            for v in node.values():
                service_number(v)
        elif isinstance(node, list):
            for v in node:
                service_number(v)

    service_number(body)
    return body, mapping


def _resident(body: dict[str, Any]) -> str:
    """The address SAPA must key the resident by: their number, else their BSUID."""
    for entry in body["entry"]:
        for change in entry["changes"]:
            value = change.get("value", {})
            for m in value.get("message_echoes", []):
                return str(m.get("to") or m.get("to_user_id"))
            for m in value.get("messages", []):
                if m.get("from") or m.get("from_user_id"):
                    return str(m.get("from") or m.get("from_user_id"))
            contacts = value.get("contacts", [])
            if contacts:
                return str(contacts[0].get("wa_id") or contacts[0].get("user_id"))
    raise AssertionError("no resident in this body")


def _files() -> list[str]:
    return sorted(p.name for p in FIXTURES.glob("*.json"))


def test_every_fixture_has_an_expected_outcome() -> None:
    assert _files() == sorted(EXPECTED), "a fixture was added or removed: say what it must do"
    assert len(EXPECTED) == 90


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="the shared fixture corpus is not beside this clone"
)
def test_the_fixtures_are_the_shared_corpus_unchanged() -> None:
    for name in [*_files(), "SOURCES.md"]:
        assert (FIXTURES / name).read_bytes() == (SHARED / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_body_others_wrote_is_acknowledged_and_handled_by_kind(rig: Rig, name: str) -> None:
    # GIVEN a body written by others, re-addressed to Somba Opu and fresh residents
    body, _ = readdress((FIXTURES / name).read_bytes(), rig.ts())
    kind = EXPECTED[name]
    resident = (
        _resident(body) if kind in (REQUEST, UNREADABLE, MEDIA_UNSUPPORTED, ABOUT, ECHO) else ""
    )
    prior = None
    if kind in (ABOUT, ECHO):
        # AND (for a message about a resident's message) that resident's open case
        rig.say("Halo", wa_id=resident)
        rig.drain()
        prior = rig.case_of(resident)
    cases_before = len(rig.c.store.list_cases(limit=1000))
    # WHEN Meta posts it, signed
    resp = rig.webhook(body)
    # THEN it is acknowledged (Meta retries anything else for days, then disables the webhook)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    rig.drain()
    cases = rig.c.store.list_cases(limit=1000)
    if kind in (REQUEST, UNREADABLE, MEDIA_UNSUPPORTED):
        # a resident's message opens one case, keyed by their number or else their BSUID,
        # and the guest-book link goes back to them the way Meta addresses them
        assert len(cases) == cases_before + 1, answer
        case = rig.case_of(resident)
        assert case.state == "link_sent"
        replies = rig.received(resident)
        assert any("/guestbook/f/" in r["text"] for r in replies), replies
        sent = rig.graph_request(replies[0]["wamid"])
        if resident.startswith("ID."):
            assert sent.get("recipient") == resident and "to" not in sent
        else:
            assert sent.get("to") == resident and "recipient" not in sent
        texts = [r["text"] for r in replies]
        if kind == UNREADABLE:
            assert text("wa_message_unreadable") in texts
        if kind == MEDIA_UNSUPPORTED:
            assert text("wa_media_unsupported") in texts
        bodies = [m.body for m in rig.messages(case.id, "in")]
        assert bodies and all(b.strip() for b in bodies), bodies
    else:
        # nothing else opens a case
        assert len(cases) == cases_before, (kind, answer)
    if kind == ABOUT:
        assert prior is not None
        assert answer["attached"] >= 1, answer
        kept = rig.messages(prior.id, "in")
        assert len(kept) == 2, [(m.type, m.body) for m in kept]
    if kind == ECHO:
        assert prior is not None
        echo = [m for m in rig.messages(prior.id, "out") if m.data.get("source") == "echo"]
        assert len(echo) == 1 and echo[0].body.strip()
    if kind == STATUS:
        assert answer["statuses"] >= 1, answer
    value_errors = any(
        c.get("value", {}).get("errors") for e in body["entry"] for c in e["changes"]
    )
    if kind == NOTICE or value_errors:
        assert answer["notices"] >= 1, answer
        assert rig.c.store.notices(), "the admin sees nothing"
    if kind == IGNORED:
        assert answer["ignored"] >= 1 and answer["routed"] == 0, answer
    # Meta delivers duplicates: the same body again changes nothing more
    again = rig.webhook(body)
    assert again.status_code == 200
    rig.drain()
    assert len(rig.c.store.list_cases(limit=1000)) == len(cases)
    if kind == NOTICE or value_errors:
        assert len(rig.c.store.notices()) == answer["notices"]


def test_somba_opu_owns_the_readdressed_bodies() -> None:
    # the re-addressing itself: a resident's number and BSUID replaced everywhere, text too
    body, mapping = readdress((FIXTURES / "restfb-system-bsuid-1.json").read_bytes())
    dumped = json.dumps(body)
    assert "US.1349" not in dumped and "US.1010" not in dumped
    assert set(mapping.values()) <= set(re.findall(r"ID\.(?:ENT\.)?\d+", dumped))
    assert body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] == PNID
    assert SOMBA_OPU in PNID


def test_the_simulator_plays_any_shape_signed(rig: Rig) -> None:
    # GIVEN a template notice from the corpus, played through the simulator's control API
    body = json.loads((FIXTURES / "restfb-phone_number_quality_update-1.json").read_bytes())
    resp = rig.http.post(f"{rig.base}/sim/control/webhook", json=body, timeout=30)
    # THEN the simulator signed it and the webhook took it
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"webhook_status": 200, "error": None}
    (notice,) = rig.c.store.notices()
    assert notice["event"] == "FLAGGED"
    refused = rig.http.post(f"{rig.base}/sim/control/webhook", json=[1], timeout=30)
    assert refused.status_code == 400
