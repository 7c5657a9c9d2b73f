"""Which service a resident's WhatsApp message names ("mau urus KK" → Kartu Keluarga)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from sapa.domain.reference import Catalogue, Service

# Only the start of a message is read: a first message that names a service says so early,
# and a pasted essay costs nothing.
MAX_CHARS = 500
# Words this long may carry one typo (a letter wrong, missing, extra or two swapped); shorter
# ones must be exact, or "kk", "kia" and "pindah" would match half the language.
FUZZY_MIN_LETTERS = 7

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The message's words: lower case, accents dropped, punctuation as spaces ("KTP-el" →
    ktp, el)."""
    folded = unicodedata.normalize("NFKD", text[:MAX_CHARS].casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WORD.findall(plain)


def detect_service(catalogue: Catalogue, text: str) -> Service | None:
    """The service whose keyword (services.toml) comes first in `text`; at the same place the
    longer phrase wins. None when the message names no service."""
    tokens = words(text)
    if not tokens:
        return None
    greetings = _phrases(catalogue.greetings)
    address = {w for phrase in _phrases(catalogue.address_words) for w in phrase}
    best: tuple[int, int, int] | None = None
    found: Service | None = None
    for order, service in enumerate(catalogue.services):
        for phrase in _phrases(service.keywords):
            at = _first(tokens, phrase, greetings, address)
            if at is None:
                continue
            rank = (at, -len(phrase), order)
            if best is None or rank < best:
                best, found = rank, service
    return found


@lru_cache(maxsize=512)
def _phrase(keyword: str) -> tuple[str, ...]:
    return tuple(words(keyword))


def _phrases(keywords: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [p for p in (_phrase(k) for k in keywords) if p]


def _first(
    tokens: list[str],
    phrase: tuple[str, ...],
    greetings: list[tuple[str, ...]],
    address: set[str],
) -> int | None:
    """Where `phrase` first occurs in `tokens` (word by word, or written as one word)."""
    joined = "".join(phrase)
    for i in range(len(tokens)):
        window = tokens[i : i + len(phrase)]
        if len(window) == len(phrase) and all(map(_same, window, phrase)):
            if len(phrase) == 1 and phrase[0] in address and _after_greeting(tokens, i, greetings):
                continue
            return i
        if len(phrase) > 1 and _same(tokens[i], joined):
            return i
    return None


def _after_greeting(tokens: list[str], i: int, greetings: list[tuple[str, ...]]) -> bool:
    return any(i >= len(g) and tuple(tokens[i - len(g) : i]) == g for g in greetings)


def _same(word: str, keyword: str) -> bool:
    if word == keyword:
        return True
    if min(len(word), len(keyword)) < FUZZY_MIN_LETTERS or abs(len(word) - len(keyword)) > 1:
        return False
    return _one_edit(word, keyword)


def _one_edit(a: str, b: str) -> bool:
    """a and b differ by one substitution, insertion, deletion or swap of neighbours."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]
