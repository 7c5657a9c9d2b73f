"""`sapa backup` and `sapa restore`: a consistent snapshot of the embedded data directory
(store, files and queue), taken while SAPA runs, and put back
(sapa.adapters.embedded.backup does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path


def backup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="the archive to write (.tar.gz)")
    p.add_argument("--data-dir", type=Path, help="default: SAPA_DATA_DIR (./var)")


def backup(ns: argparse.Namespace) -> int:
    from sapa.adapters.embedded import backup as snapshot

    report = snapshot.backup(_data_dir(ns), ns.file)
    print(report.summary())
    return 0


def restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="an archive written by `sapa backup`")
    p.add_argument("--data-dir", type=Path, help="default: SAPA_DATA_DIR (./var)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a data directory that already holds data (it is moved aside, not deleted)",
    )


def restore(ns: argparse.Namespace) -> int:
    from sapa.adapters.embedded import backup as snapshot

    report = snapshot.restore(ns.file, _data_dir(ns), force=ns.force)
    print(report.summary())
    return 0


def _data_dir(ns: argparse.Namespace) -> Path:
    if ns.data_dir is not None:
        return Path(ns.data_dir)
    from sapa.settings import Settings

    return Settings().sapa_data_dir
