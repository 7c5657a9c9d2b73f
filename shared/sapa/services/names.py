"""Deterministic task names: the same decision always yields the same name (Cloud Tasks rules)."""

from __future__ import annotations

import hashlib


def task_name(kind: str, *parts: object) -> str:
    """A name of [A-Za-z0-9_-] derived from `parts`; equal parts give equal names."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


# The id of a reply button SAPA sends is this prefix and the keyword the tap stands for
# (notify.BUTTONS); intake reads a tap on it as that keyword typed.
BUTTON_PREFIX = "SAPA_"
