"""WhatsApp's notices about the account, its numbers and its templates: kept once, shown to the
admin, and a paused template not used until Meta approves it again."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ROOT
from tests.whatsapp.conftest import Rig

FIXTURES = ROOT / "tests" / "fixtures" / "meta-webhooks"


def _template_status(rig: Rig, name: str, event: str, at: int) -> Any:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA",
                "time": at,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": event,
                            "message_template_id": 1,
                            "message_template_name": name,
                            "message_template_language": "id",
                            "reason": "NONE",
                        },
                    }
                ],
            }
        ],
    }
    resp = rig.webhook(body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_paused_template_is_not_used_until_approved_again(rig: Rig) -> None:
    template = rig.c.templates["guestbook_link"]
    now = int(rig.clock.now().timestamp())
    # GIVEN Meta paused the guest-book link template
    assert _template_status(rig, template.name, "PAUSED", now)["notices"] == 1
    # WHEN a resident whose window has closed is due their link
    rig.say("Halo")
    rig.clock.advance(25 * 3600)
    rig.drain()
    # THEN nothing went out, and the case says why (staff can call the resident instead)
    case = rig.case_of()
    assert rig.received() == []
    (note,) = rig.events(case.id, "message_not_sent")
    assert note.detail["reason"] == "template_paused"
    # WHEN Meta approves it again, and the resident is due a reminder by template
    _template_status(rig, template.name, "APPROVED", now + 60)
    second = rig.say("Halo", wa_id="6285298765432")
    assert second
    rig.clock.advance(25 * 3600)
    rig.drain()
    # THEN the template is used again
    (out,) = rig.received("6285298765432")
    assert out["type"] == "template"


def test_every_notice_reaches_the_admin_page_once(rig: Rig) -> None:
    # GIVEN the account and number notices of the fixture corpus, each delivered twice
    names = [
        "restfb-phone_number_quality_update-1.json",
        "restfb-account_update-1.json",
        "pywa-template_category_update-1.json",
        "restfb-business_username_update-1.json",
        "meta-errors-1.json",
    ]
    for name in names:
        body = json.loads((FIXTURES / name).read_bytes())
        for _ in range(2):
            assert rig.webhook(body).status_code == 200
    # THEN the admin sees each once, labelled in Bahasa Indonesia
    admin = rig.http
    login = admin.post(
        f"{rig.base}/staff/login",
        data={"email": "admin@sapa.test"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    resp = admin.get(
        f"{rig.base}/staff/admin/whatsapp", headers={"Accept": "application/json"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    notices = resp.json()["notices"]
    assert sorted(n["field"] for n in notices) == sorted(
        [
            "phone_number_quality_update",
            "account_update",
            "template_category_update",
            "business_username_update",
            "errors",
        ]
    )
    by_field = {n["field"]: n for n in notices}
    assert by_field["phone_number_quality_update"]["label"] == "Kualitas nomor"
    assert by_field["phone_number_quality_update"]["event"] == "FLAGGED"
    assert by_field["errors"]["event"] == "130429"
    assert by_field["account_update"]["event"] == "DISABLED_UPDATE"
    page = admin.get(f"{rig.base}/staff/admin/whatsapp", timeout=30)
    assert page.status_code == 200 and "Kualitas nomor" in page.text
    # AND another role may not read them
    other = rig.http.__class__()
    other.trust_env = False
    other.post(
        f"{rig.base}/staff/login",
        data={"email": "loket.sombaopu@sapa.test"},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    refused = other.get(
        f"{rig.base}/staff/admin/whatsapp", headers={"Accept": "application/json"}, timeout=30
    )
    assert refused.status_code == 403
