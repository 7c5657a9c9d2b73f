"""Officers as staff read them: by name, not by e-mail (a leaf the pages and reports share)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sapa.bootstrap import Container


def staff_names(c: Container) -> dict[str, str]:
    """Officers' names by e-mail, deactivated ones included: past work keeps its officer's
    name after they leave."""
    return {s.email: s.name for s in c.staff.all(include_inactive=True)}
