"""A webhook change SAPA does not read is logged by its field name: the sender's text, so the
log record carries it masked (not only the JSON formatter's output; another handler sees the
record's raw attributes)."""

from __future__ import annotations

import logging

import pytest

from sapa.adapters.meta_webhook import parse_notification

NIK = "7306081205150003"  # a valid-looking NIK of Somba Opu


def test_an_unknown_field_name_is_logged_masked(caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": f"x{NIK}", "value": {}}]}],
    }
    with caplog.at_level(logging.INFO, logger="sapa.adapters.meta_webhook"):
        found = parse_notification(body)
    assert found.ignored == [f"x{NIK}"]
    (record,) = [r for r in caplog.records if "not read" in r.getMessage()]
    kind = str(record.__dict__["kind"])
    assert NIK not in kind and kind.startswith("x7306") and "*" in kind
