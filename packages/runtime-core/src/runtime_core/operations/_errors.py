"""The errors operations raise: each maps to one HTTP status and one CLI exit line."""

from __future__ import annotations

from typing import Any

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "OperationError", "Unauthorized"]


class OperationError(Exception):
    """An operation refused; nothing changed. ``detail`` says why and what to do."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        """Describe the refusal.

        Args:
            detail: One sentence naming what is wrong and the fix.
            errors: For invalid input, every problem: ``{"path", "code", "message"}``.
        """
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(OperationError):
    """No such resource for this tenant (another tenant's resource is reported the same way)."""

    status = 404
    title = "Not found"


class Conflict(OperationError):
    """The resource's state does not allow the operation (a run that has ended, a task answered)."""

    status = 409
    title = "Conflict"


class Invalid(OperationError):
    """The input is invalid; ``errors`` lists every problem."""

    status = 422
    title = "Invalid input"


class Unauthorized(OperationError):
    """No token, or one that is unknown or revoked."""

    status = 401
    title = "Unauthorized"


class Forbidden(OperationError):
    """A valid token whose role is too low."""

    status = 403
    title = "Forbidden"
