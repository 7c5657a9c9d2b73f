"""One server per data directory: `make run` holds an exclusive lock on `<data dir>/sapa.lock`.

A second server on the same directory would share its task queue (its worker taking and
"sending" the first one's tasks through its own simulator), so it refuses to start, naming the
one that runs; so does `sapa restore` into a directory a server is using. The lock is the
kernel's (`flock`): a server that is killed, however hard, releases it with its last file
descriptor, so a stale lock file never blocks the next start. The file says who holds it
(process id, address, since when) for the message, and nothing else.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sapa.domain.errors import PermanentError

LOCK_FILE = "sapa.lock"
IN_USE = (
    "Direktori data {data_dir} sedang dipakai oleh SAPA lain{holder}. Hentikan dulu server itu "
    "(Ctrl+C di terminalnya, atau kill {pid}), atau jalankan dengan SAPA_DATA_DIR lain."
)


class DataDirInUse(PermanentError):
    """Another process holds the data directory."""


class DataDirLock:
    """The exclusive lock of a data directory, held from `acquire` until `release` (or the
    process's end)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.path = self.data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, **about: Any) -> DataDirLock:
        """Take the lock, or raise `DataDirInUse` naming its holder. `about` (an address,
        say) is written into the lock file for the message another process would give."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._in_use() from None
        except BaseException:
            os.close(fd)
            raise
        holder = {"pid": os.getpid(), "since": datetime.now(UTC).isoformat(), **about}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # nobody holds it now: the next message names no one
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _in_use(self) -> DataDirInUse:
        try:
            holder: dict[str, Any] = json.loads(self.path.read_text("utf-8") or "{}")
        except (OSError, ValueError):
            holder = {}
        pid = holder.get("pid", "PID")
        parts = [f"PID {pid}"] if "pid" in holder else []
        if holder.get("url"):
            parts.append(str(holder["url"]))
        if holder.get("since"):
            parts.append(f"sejak {holder['since'][:19].replace('T', ' ')} UTC")
        named = f" ({', '.join(parts)})" if parts else ""
        return DataDirInUse(IN_USE.format(data_dir=self.data_dir, holder=named, pid=pid))
