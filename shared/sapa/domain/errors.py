"""The one error hierarchy: permanent errors are the caller's fault, transient ones are retried."""

from __future__ import annotations

from typing import Any


class SapaError(Exception):
    """Base of every error SAPA raises on purpose. `message` is Bahasa Indonesia for people."""

    code = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class PermanentError(SapaError):
    """Bad input or a forbidden move: retrying the same request will never succeed."""

    code = "permanent"


class TransientError(SapaError):
    """A backend is down or busy: the same request may succeed later."""

    code = "transient"


class ValidationFailed(PermanentError):
    """Input does not satisfy the rules; `fields` maps field names to messages."""

    code = "invalid"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields or {})
        self.fields = fields or {}


class NotFound(PermanentError):
    code = "not_found"


class Unauthorized(PermanentError):
    """The caller could not be authenticated (bad signature, no session)."""

    code = "unauthorized"


class Forbidden(PermanentError):
    """The caller is known but may not do this."""

    code = "forbidden"


class Conflict(PermanentError):
    """The request clashes with the current state of the resource."""

    code = "conflict"


class IllegalTransition(Conflict):
    """An event that the state machine does not allow from the case's state for this actor."""

    code = "illegal_transition"

    def __init__(self, message: str, *, case_id: str, state: str, event: str, actor: str) -> None:
        super().__init__(message)
        self.detail = {"case_id": case_id, "state": state, "event": event, "actor": actor}
        self.case_id, self.state, self.event, self.actor = case_id, state, event, actor


class ConcurrentUpdate(TransientError):
    """Someone else saved the case between our read and our write; reload and retry."""

    code = "concurrent_update"


class AlreadyExists(Conflict):
    code = "already_exists"
