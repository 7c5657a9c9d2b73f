"""The operator's rollup command, registered in `sapa.cli.COMMANDS`:

    sapa rollup-rebuild [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--check]

counts every case of the period again from nothing (today's SOP and SLA settings) and reports
each rollup cell whose stored counters differ; without --check it then puts them right (each
case's ledger replaced under its version check, the rest corrected). Exit status 1 when
--check found a difference.
"""

from __future__ import annotations

import argparse
from datetime import date
from zoneinfo import ZoneInfo

from sapa.domain.errors import PermanentError

BAD_DATE = "Tanggal harus berbentuk TTTT-BB-HH, misalnya 2026-10-01."
ORDER = "--to tidak boleh sebelum --from."
SHOWN = 20  # cells listed; the rest counted


def rollup_rebuild_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="first", help="first local day (default: 2000-01-01)")
    p.add_argument("--to", dest="last", help="last local day (default: today)")
    p.add_argument("--check", action="store_true", help="only compare and report; change nothing")


def _day(raw: str | None, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise PermanentError(BAD_DATE) from None


def rollup_rebuild(ns: argparse.Namespace) -> int:
    from sapa.bootstrap import container
    from sapa.services import rollups

    c = container()
    today = c.clock.now().astimezone(ZoneInfo(c.region.timezone)).date()
    first, last = _day(ns.first, date(2000, 1, 1)), _day(ns.last, today)
    if last < first:
        raise PermanentError(ORDER)
    found = rollups.rebuild(c, first, last, check_only=ns.check)
    print(
        f"{first.isoformat()} s.d. {last.isoformat()}: {found.cases} permohonan dihitung ulang,"
        f" {found.cells} sel rollup dibandingkan, {len(found.differences)} berbeda"
    )
    for key, change in sorted(found.differences.items())[:SHOWN]:
        shown = ", ".join(f"{name} {value:+d}" for name, value in sorted(change.items())[:8])
        more = f" (+{len(change) - 8} lagi)" if len(change) > 8 else ""
        print(f"  {rollups.describe(key)}: {shown}{more}")
    if len(found.differences) > SHOWN:
        print(f"  ... dan {len(found.differences) - SHOWN} sel lainnya")
    if ns.check:
        return 1 if found.differences else 0
    print(
        f"diperbaiki: {found.recounted} buku rollup permohonan ditulis ulang,"
        f" {found.corrected} sel dikoreksi"
    )
    return 0
