"""The StaffDirectory over the CaseStore's officers: what the admin pages change, read cheaply
per request, and seeded from the staff file while the store holds nobody."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sapa.domain.errors import ConcurrentUpdate
from sapa.domain.staff import ADDED, Roster, StaffEvent, StaffMember, changes
from sapa.ports import CaseStore

log = logging.getLogger(__name__)

Seed = Callable[[], list[StaffMember]]


class StoreStaffDirectory:
    """The officers as the store keeps them. `get` finds only active officers.

    Each call serves a copy kept in this process; after `ttl_seconds` it asks the store for
    the officers' version (one small read) and reads them all again only if it moved. With
    `ttl_seconds=0` (the embedded SQLite store, a local read) every call sees the latest
    change; over a remote store (Firestore) a change made elsewhere shows within
    `ttl_seconds`, and at once in the process that made it (`refresh`).

    The first read of an empty store (version 0, nobody) writes the officers of `seed` (the
    staff file) as the first version, each with an `officer_added` event by the system. Two
    instances seeding at once cannot both write: the second's save fails on the version, and
    it reads what the first wrote. Once the store holds officers, the file is not read again.
    """

    def __init__(
        self,
        store: CaseStore,
        *,
        now: Callable[[], datetime],
        seed: Seed | None = None,
        ttl_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._now = now
        self._seed = seed
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._roster: Roster | None = None
        self._checked = 0.0

    def get(self, email: str) -> StaffMember | None:
        member = self.roster().get(email)
        return member if member is not None and member.active else None

    def all(self, *, include_inactive: bool = False) -> list[StaffMember]:
        roster = self.roster()
        return list(roster.officers) if include_inactive else roster.active()

    def refresh(self) -> None:
        with self._lock:
            self._roster = None

    def roster(self) -> Roster:
        """The officers as last read (see the class docstring for how fresh)."""
        with self._lock:
            now = self._monotonic()
            if self._roster is not None and now - self._checked < self._ttl:
                return self._roster
            if self._roster is None or self._store.staff_version() != self._roster.version:
                self._roster = self._read()
            self._checked = now
            return self._roster

    def _read(self) -> Roster:
        roster = self._store.staff_roster()
        if roster.version or roster.officers or self._seed is None:
            return roster
        members = self._seed()
        if not members:
            return roster
        at = self._now()
        events = [
            StaffEvent(
                at=at,
                actor_id="system",
                event=ADDED,
                officer=m.email,
                changes=changes(None, m),
                detail={"source": "staff_file"},
            )
            for m in members
        ]
        try:
            self._store.save_staff(members, events, expected_version=0)
            log.info("staff seeded from the staff file", extra={"count": len(members)})
        except ConcurrentUpdate:
            pass  # another instance seeded first: read what it wrote
        return self._store.staff_roster()
