"""Backup and restore of the embedded default's data directory (`sapa backup` / `sapa restore`).

The data directory holds SQLite databases (the case store, the task queue, ...), write-once blob
files, the local signer's keys and the generated secrets. A backup is taken while SAPA runs:

1. every SQLite database is copied with SQLite's online backup API, which gives a consistent
   snapshot even while other connections write (WAL and journal files are not copied: the
   snapshot is a whole database);
2. then every other file is copied. Blobs are written before any case refers to them and never
   change afterwards, so every blob the database snapshot refers to already exists when it is
   copied (blobs written after the snapshot are copied too and are harmless orphans). The one
   race left: a blob that the retention job deletes between steps 1 and 2 is missing from the
   archive while the snapshot still refers to it; the retention job runs hourly and the
   restored case would show the document as expired one run early.

The archive is a gzip'd tar with `MANIFEST.json` (sha256 and size of every file). Restore checks
every file against the manifest before anything is put in place, extracts into a sibling
directory and swaps it in; a data directory that already holds data is refused unless `force`,
and then it is moved aside (never deleted).

Cloud deployments back up with Firestore's scheduled backups and bucket versioning (infra/).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sapa.adapters.embedded.data_lock import LOCK_FILE, DataDirLock
from sapa.domain.errors import PermanentError

FORMAT = "sapa-backup/1"
MANIFEST = "MANIFEST.json"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SKIP_SUFFIXES = ("-wal", "-shm", "-journal", LOCK_FILE)  # the lock names a live process


@dataclass
class Report:
    action: str
    archive: Path
    data_dir: Path
    databases: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    moved_aside: Path | None = None

    def summary(self) -> str:
        lines = [
            f"{self.action}: {self.archive} <-> {self.data_dir}",
            f"  databases: {', '.join(self.databases) or '-'}",
            f"  files: {self.files} ({self.bytes} bytes)",
        ]
        if self.moved_aside is not None:
            lines.append(f"  previous data moved to: {self.moved_aside}")
        return "\n".join(lines)


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _snapshot_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()


def backup(data_dir: Path, archive: Path) -> Report:
    """Write a consistent snapshot of `data_dir` to `archive` (tar.gz), while SAPA may run."""
    data_dir = data_dir.resolve()
    if not data_dir.is_dir():
        raise PermanentError(f"Direktori data {data_dir} tidak ada.")
    archive = archive.resolve()
    if archive.is_relative_to(data_dir):
        raise PermanentError("Arsip cadangan tidak boleh disimpan di dalam direktori data.")
    report = Report("backup", archive, data_dir)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sapa-backup-", dir=archive.parent) as tmp:
        stage = Path(tmp) / "data"
        stage.mkdir()
        everything = sorted(p for p in data_dir.rglob("*") if p.is_file())
        files = [p for p in everything if not p.name.endswith(_SKIP_SUFFIXES)]
        databases = [p for p in files if _is_sqlite(p)]
        # 1. the databases first (consistent snapshots) ...
        for db in databases:
            target = stage / db.relative_to(data_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            _snapshot_sqlite(db, target)
            report.databases.append(db.relative_to(data_dir).as_posix())
        # 2. ... then the files they may refer to, including blobs written since.
        for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
            if path.name.endswith(_SKIP_SUFFIXES) or path in databases:
                continue
            target = stage / path.relative_to(data_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, target)
            except FileNotFoundError:
                continue  # deleted meanwhile (a temporary file, or retention)
        listed: dict[str, dict[str, object]] = {}
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            rel = path.relative_to(stage).as_posix()
            listed[rel] = {"sha256": _sha256(path), "size": path.stat().st_size}
            report.files += 1
            report.bytes += path.stat().st_size
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "databases": report.databases,
            "files": listed,
        }
        partial = archive.with_name(archive.name + ".partial")
        # every case, document, NIK, the secrets and the signer's keys: owner-only, like them
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            data = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mtime = int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(data))
            for rel in listed:
                tar.add(stage / rel, arcname=f"data/{rel}", recursive=False)
        os.replace(partial, archive)
    return report


def _read_manifest(tar: tarfile.TarFile) -> dict[str, object]:
    try:
        member = tar.getmember(MANIFEST)
        fh = tar.extractfile(member)
        if fh is None:
            raise KeyError(MANIFEST)
        manifest = json.loads(fh.read())
    except (KeyError, ValueError) as exc:
        raise PermanentError("Arsip bukan cadangan SAPA (MANIFEST.json tidak ada/rusak).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PermanentError("Format arsip cadangan tidak dikenal.")
    return manifest


def _holds_data(path: Path) -> bool:
    return path.exists() and any(p.name != LOCK_FILE for p in path.iterdir())


def restore(archive: Path, data_dir: Path, *, force: bool = False) -> Report:
    """Put the snapshot in `archive` into `data_dir`. Checks before it acts; refuses while a
    server uses `data_dir` (its lock), and holds that lock itself meanwhile."""
    archive, data_dir = archive.resolve(), data_dir.resolve()
    if not data_dir.exists():
        return _restore(archive, data_dir, force=force)
    with DataDirLock(data_dir):
        return _restore(archive, data_dir, force=force)


def _restore(archive: Path, data_dir: Path, *, force: bool) -> Report:
    if not archive.is_file():
        raise PermanentError(f"Arsip {archive} tidak ada.")
    if _holds_data(data_dir) and not force:
        raise PermanentError(
            f"Direktori data {data_dir} sudah berisi data; gunakan --force untuk menggantinya "
            "(data lama dipindahkan, tidak dihapus)."
        )
    report = Report("restore", archive, data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise PermanentError("Arsip cadangan tidak dapat dibaca.") from exc
    with tar, tempfile.TemporaryDirectory(prefix=".sapa-restore-", dir=data_dir.parent) as tmp:
        manifest = _read_manifest(tar)
        expected = manifest.get("files")
        if not isinstance(expected, dict):
            raise PermanentError("Format arsip cadangan tidak dikenal.")
        names = {m.name for m in tar.getmembers() if m.isfile()} - {MANIFEST}
        wanted = {f"data/{rel}" for rel in expected}
        for name in names | wanted:
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts:
                raise PermanentError(f"Arsip cadangan memuat jalur tidak sah: {name!r}.")
        if names != wanted:
            raise PermanentError("Isi arsip cadangan tidak sesuai dengan MANIFEST.json.")
        try:
            tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise PermanentError("Arsip cadangan rusak.") from exc
        stage = Path(tmp) / "data"
        for rel, meta in expected.items():
            path = stage / rel
            if not path.is_file() or _sha256(path) != meta["sha256"]:
                raise PermanentError(f"Berkas {rel} di arsip cadangan rusak (sha256 tidak cocok).")
            report.files += 1
            report.bytes += path.stat().st_size
        databases = manifest.get("databases")
        for db in databases if isinstance(databases, list) else []:
            conn = sqlite3.connect(stage / str(db))
            try:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
            if ok != "ok":
                raise PermanentError(f"Basis data {db} di arsip cadangan rusak.")
            report.databases.append(str(db))
        if data_dir.exists():
            if _holds_data(data_dir):
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                aside = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
                data_dir.rename(aside)
                report.moved_aside = aside
            else:
                (data_dir / LOCK_FILE).unlink(missing_ok=True)  # ours: released on return
                data_dir.rmdir()
        stage.rename(data_dir)
    return report
