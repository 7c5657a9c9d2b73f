"""Deterministic task names: the same decision always yields the same name (Cloud Tasks rules)."""

from __future__ import annotations

import hashlib


def task_name(kind: str, *parts: object) -> str:
    """A name of [A-Za-z0-9_-] derived from `parts`; equal parts give equal names."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


def reply_message_id(case_id: str, seq: int) -> str:
    """The id under which an officer's reply, noted as the case's audit event `seq`, is
    recorded once it is sent: the message id of its notify task (notify.notify)."""
    return f"out:{task_name('notify', case_id, 'reply', seq)}"


# The id of a reply button SAPA sends is this prefix and the keyword the tap stands for
# (notify.BUTTONS); intake reads a tap on it as that keyword typed.
BUTTON_PREFIX = "SAPA_"
