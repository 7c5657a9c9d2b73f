"""`sapa` — the operator's command line (installed with the package; also `python -m sapa.cli`).

    sapa backup  FILE       a consistent snapshot of the embedded data directory, while running
    sapa restore FILE       put a snapshot back into an empty (or --force'd) data directory
                            (both in sapa.cli.backup)
    sapa subject-export     a resident's data as one zip (UU 27/2022); also breach-report and
                            subject-reindex (sapa.cli.pdp)
    sapa rollup-rebuild     count the reports' rollups again from the cases and report (and
                            put right) any difference (sapa.cli.rollups)

Subcommands register themselves in COMMANDS: (help, add_arguments, run). The CLI is production
code (an operator runs it where SAPA runs; it ships in the deploy bundle), so it never imports
the development tools of sapa.dev.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sapa.cli import backup, pdp, rollups
from sapa.domain.errors import SapaError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "backup": (
        "snapshot the embedded store, files and queue",
        backup.backup_args,
        backup.backup,
    ),
    "restore": (
        "restore a snapshot into a data directory",
        backup.restore_args,
        backup.restore,
    ),
    "subject-export": (
        "everything held about one NIK or WhatsApp number, as one zip (UU 27/2022)",
        pdp.subject_export_args,
        pdp.subject_export,
    ),
    "breach-report": (
        "which cases were read or changed by whom in a time window, as CSV",
        pdp.breach_report_args,
        pdp.breach_report,
    ),
    "subject-reindex": (
        "re-save every case so the subject index (NIK, WhatsApp number) covers it",
        pdp.subject_reindex_args,
        pdp.subject_reindex,
    ),
    "rollup-rebuild": (
        "count the reports' rollups again from the cases; report and correct differences",
        rollups.rollup_rebuild_args,
        rollups.rollup_rebuild,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sapa", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    ns = parser.parse_args(argv)
    try:
        return COMMANDS[ns.command][2](ns)
    except SapaError as exc:
        print(f"sapa {ns.command}: {exc.message}", file=sys.stderr)
        return 2
