"""`sapa` — the operator's command line (installed with the package; also `python -m sapa.cli`).

    sapa backup  FILE       a consistent snapshot of the embedded data directory, while running
    sapa restore FILE       put a snapshot back into an empty (or --force'd) data directory
    sapa subject-export     a resident's data as one zip (UU 27/2022); also breach-report and
                            subject-reindex (sapa.cli.pdp)

Subcommands register themselves in COMMANDS: (help, add_arguments, run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from sapa.cli import pdp
from sapa.domain.errors import SapaError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _backup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="the archive to write (.tar.gz)")
    p.add_argument("--data-dir", type=Path, help="default: SAPA_DATA_DIR (./var)")


def _backup(ns: argparse.Namespace) -> int:
    from sapa.backup import backup

    report = backup(_data_dir(ns), ns.file)
    print(report.summary())
    return 0


def _restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="an archive written by `sapa backup`")
    p.add_argument("--data-dir", type=Path, help="default: SAPA_DATA_DIR (./var)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a data directory that already holds data (it is moved aside, not deleted)",
    )


def _restore(ns: argparse.Namespace) -> int:
    from sapa.backup import restore

    report = restore(ns.file, _data_dir(ns), force=ns.force)
    print(report.summary())
    return 0


def _data_dir(ns: argparse.Namespace) -> Path:
    if ns.data_dir is not None:
        return Path(ns.data_dir)
    from sapa.settings import Settings

    return Settings().sapa_data_dir


COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "backup": ("snapshot the embedded store, files and queue", _backup_args, _backup),
    "restore": ("restore a snapshot into a data directory", _restore_args, _restore),
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
