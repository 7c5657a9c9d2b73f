"""Rate limits for what the public can reach: WhatsApp senders, the guest book, the QR page.

Two limiters:

- `SharedLimiter`: a fixed window counted on the CaseStore's atomic `next_sequence(scope)`, so
  every function instance (and every thread of the local server) counts against the same
  number. The scope is `rl:<prefix>:<sha256(key)[:16]>:<window index>`: no phone number or
  address is written to the store, and a new window is a new counter (nothing to reset).
  Once an instance has seen a key go over its limit it remembers that until the window ends,
  so a flood costs at most `limit + 1` counter writes per instance and window, not one each.
  A fixed window lets a client through at most twice the limit across a window boundary;
  that is the price of one atomic increment per hit (no read-modify-write, no transaction).
  Each counter carries an expiry (the end of the next window); the retention job and, in the
  cloud, Firestore's TTL policy delete it after that.
- `RateLimiter`: a sliding window in this process's memory only (for tests and tools; an
  edge limit such as Cloud Armor belongs in front of the cloud functions as well).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, cast

from sapa.domain.errors import TransientError

log = logging.getLogger(__name__)


class Counter(Protocol):
    """The part of the CaseStore a shared limiter needs: an atomic per-scope counter."""

    def next_sequence(self, scope: str, *, expires_at: datetime | None = None) -> int: ...


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # hits in this window so far (an estimate above the limit)
    window: int  # index of the fixed window (epoch seconds // window length)
    retry_after: int  # seconds until the window ends
    first_refusal: bool = False  # exactly one hit per key and window gets this: the notice


class SharedLimiter:
    """At most `limit` hits per key in each fixed window of `window_seconds`, for all instances.

    If the store cannot count (an outage), the hit is allowed and a warning logged: a limiter
    must not turn a store hiccup into refusing residents."""

    def __init__(
        self,
        store: Counter,
        prefix: str,
        limit: int,
        window_seconds: int = 60,
        *,
        max_memo: int = 10_000,
        secret: bytes = b"",
    ) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be at least 1")
        self.store = store
        self.prefix = prefix
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_memo = max_memo
        self.secret = secret
        self._over: dict[str, int] = {}  # key digest → window in which it went over the limit
        self._lock = threading.Lock()

    def digest(self, key: str) -> str:
        """A keyed hash of the number or address (HMAC-SHA256): Indonesia's ~10^10 mobile
        numbers are too few for a plain hash to hide them in the counters and backups."""
        raw = key.encode("utf-8", "surrogatepass")
        return hmac.new(self.secret, raw, hashlib.sha256).hexdigest()[:16]

    def scope(self, key: str, window: int) -> str:
        return f"rl:{self.prefix}:{self.digest(key)}:{window}"

    def hit(self, key: str, now: datetime) -> Verdict:
        """Count one hit of `key` at `now` and say whether it may go ahead."""
        seconds = int(now.timestamp())
        window = seconds // self.window_seconds
        retry_after = max(1, (window + 1) * self.window_seconds - seconds)
        digest = self.digest(key)
        with self._lock:
            if self._over.get(digest) == window:
                return Verdict(False, self.limit + 1, window, retry_after)
        try:
            # kept one more window (a late hit still finds its count), then deleted
            ends = datetime.fromtimestamp((window + 2) * self.window_seconds, UTC)
            count = self.store.next_sequence(self.scope(key, window), expires_at=ends)
        except TransientError:
            log.warning("rate limit counter unavailable; request allowed", extra={"kind": "rl"})
            return Verdict(True, 0, window, 0)
        if count <= self.limit:
            return Verdict(True, count, window, retry_after)
        with self._lock:
            if len(self._over) >= self.max_memo:
                for k in [k for k, w in self._over.items() if w != window]:
                    del self._over[k]
                if len(self._over) >= self.max_memo:
                    self._over.clear()
            self._over[digest] = window
        return Verdict(False, count, window, retry_after, first_refusal=count == self.limit + 1)


_shared: weakref.WeakKeyDictionary[object, dict[tuple[str, int, int, bytes], SharedLimiter]] = (
    weakref.WeakKeyDictionary()
)
_shared_lock = threading.Lock()


def shared_limiter(
    store: Counter, prefix: str, limit: int, window_seconds: int = 60, *, secret: bytes = b""
) -> SharedLimiter:
    """The limiter of `prefix` on `store` (one per store, so its memory of keys over the limit
    never outlives the store it counted in)."""
    with _shared_lock:
        try:
            per_store = _shared.setdefault(store, {})
        except TypeError:  # a store that cannot be weakly referenced: no memory across calls
            return SharedLimiter(store, prefix, limit, window_seconds, secret=secret)
        key = (prefix, limit, window_seconds, secret)
        if key not in per_store:
            # a weak proxy: a strong reference from the value would keep the key (the store and
            # its open database) alive for ever
            proxy = cast(Counter, weakref.proxy(store))
            per_store[key] = SharedLimiter(proxy, prefix, limit, window_seconds, secret=secret)
        return per_store[key]


class RateLimiter:
    """At most `limit` hits per `window` seconds per key in this process; memory bounded by
    `max_keys`."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for `key`; False when it is over the limit (the hit is not counted)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._evict(now)
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def retry_after(self, key: str) -> int:
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return 0
            return max(1, int(self.window - (self._clock() - hits[0])) + 1)

    def _evict(self, now: float) -> None:
        for k in [k for k, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[k]
        while len(self._hits) >= self.max_keys:
            self._hits.pop(next(iter(self._hits)))


def client_address(forwarded_for: str, remote_addr: str | None, hops: int = 1) -> str:
    """The client as the first trusted front end saw it. Each trusted proxy appends the address
    it saw to X-Forwarded-For, so with `hops` trusted proxies the client is the `hops`-th entry
    from the end (earlier entries are whatever the client sent). 1: the platform's own front
    end (a function called directly); 2: Google's load balancer in front of it, which appends
    "<client>,<load balancer>" (TRUSTED_PROXY_HOPS). Without the header, the socket's peer."""
    parts = [p.strip() for p in forwarded_for.split(",") if p.strip()]
    if not parts:
        return remote_addr or "-"
    return parts[-hops] if len(parts) >= hops else parts[0]


def limiter_secret(session_secret: str) -> bytes:
    """The key of the counters' hashes, derived from the session secret (rotating that secret
    only starts every window afresh)."""
    return hmac.new(session_secret.encode(), b"sapa.ratelimit", hashlib.sha256).digest()
