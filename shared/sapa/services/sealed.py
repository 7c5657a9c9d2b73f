"""A passphrase on its way to the signer: sealed, short-lived, never stored in the clear."""

from __future__ import annotations

import base64
import hashlib
import hmac

from sapa.bootstrap import Container
from sapa.domain.errors import PermanentError

# Long enough for the queue's first retries, short enough that a dead-lettered or leaked task
# carries nothing usable: after this the head of office signs again.
SEAL_SECONDS = 15 * 60
SEAL_EXPIRED = (
    "Permintaan tanda tangan sudah kedaluwarsa sebelum dapat diproses. Silakan tanda tangani ulang."
)


def _fernet(c: Container):  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    # A key of its own, derived from the session secret (no extra secret to manage).
    raw = hmac.new(
        c.settings.secret("session_secret").encode(), b"sapa-passphrase-seal", hashlib.sha256
    ).digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def seal(c: Container, passphrase: str) -> str:
    """Encrypt and authenticate the passphrase, with its creation time, for the task payload."""
    return str(_fernet(c).encrypt(passphrase.encode()).decode())


def unseal(c: Container, token: str) -> str:
    """The passphrase, if the seal is intact and younger than SEAL_SECONDS; else PermanentError."""
    from cryptography.fernet import InvalidToken

    try:
        return str(_fernet(c).decrypt(token.encode(), ttl=SEAL_SECONDS).decode())
    except (InvalidToken, ValueError):
        raise PermanentError(SEAL_EXPIRED) from None
