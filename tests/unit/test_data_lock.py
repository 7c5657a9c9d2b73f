"""One server per data directory (`sapa.adapters.embedded.data_lock`): the lock refuses a second
holder naming the first, is released by the kernel when its holder dies, and keeps `sapa
restore` out of a directory a server uses; `sapa backup` does not copy it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from sapa.adapters.embedded import backup
from sapa.adapters.embedded.data_lock import LOCK_FILE, DataDirInUse, DataDirLock


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path / "var").acquire(url="http://127.0.0.1:8080")
    try:
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path / "var").acquire()
        message = str(refused.value)
        assert "sedang dipakai oleh SAPA lain" in message
        assert f"PID {os.getpid()}" in message and "http://127.0.0.1:8080" in message
        assert str((tmp_path / "var").resolve()) in message
    finally:
        first.release()
    # once released, the next one takes it
    with DataDirLock(tmp_path / "var") as again:
        assert again.held


def test_a_killed_holder_does_not_block_the_next(tmp_path: Path) -> None:
    data = tmp_path / "var"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from sapa.adapters.embedded.data_lock import DataDirLock;"
            f"DataDirLock(Path({str(data)!r})).acquire(); print('held', flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DataDirInUse, match=f"PID {holder.pid}"):
            DataDirLock(data).acquire()
        # WHEN the holder is killed outright
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    # THEN its lock file is left, but the lock is free
    assert (data / LOCK_FILE).exists()
    deadline = time.monotonic() + 5
    while True:
        try:
            DataDirLock(data).acquire().release()
            break
        except DataDirInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_restore_refuses_a_directory_in_use_and_backup_leaves_the_lock_out(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "note.txt").write_text("x")
    running = DataDirLock(data).acquire(url="http://127.0.0.1:8080")
    try:
        archive = tmp_path / "backup.tar.gz"
        backup.backup(data, archive)  # a backup is safe while SAPA runs
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        assert "data/note.txt" in names and f"data/{LOCK_FILE}" not in names
        # WHEN the archive is restored into the directory the server uses
        with pytest.raises(DataDirInUse, match="sedang dipakai"):
            backup.restore(archive, data, force=True)
        assert (data / "note.txt").read_text() == "x"  # nothing was touched
    finally:
        running.release()
    # AND once the server stopped, the restore goes ahead (the old data moved aside)
    report = backup.restore(archive, data, force=True)
    assert report.moved_aside is not None
    assert (data / "note.txt").read_text() == "x"
    # AND into an empty directory a stopped server left (its lock file only), without --force
    empty = tmp_path / "empty"
    DataDirLock(empty).acquire().release()
    backup.restore(archive, empty)
    assert (empty / "note.txt").read_text() == "x"
