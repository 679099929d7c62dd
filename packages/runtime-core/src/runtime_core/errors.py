"""Structured runtime errors.

Every runtime error is ``{category, code?, message, nodePath, at, details?}``. The categories and
whether authored code can catch them are fixed by the DSL contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from runtime_core.values import safe_text

__all__ = [
    "CATCHABLE_CATEGORIES",
    "CATEGORIES",
    "NOT_RETRIED_BY_DEFAULT",
    "RunError",
    "RuntimeErrorInfo",
]

CATEGORIES: Final = (
    "ValidationError",
    "ExpressionError",
    "ActionError",
    "TransientError",
    "TimeoutError",
    "ChildWorkflowError",
    "Cancellation",
    "InterpreterCorruption",
)
#: Categories a ``control.tryCatch``, ``retry`` or ``onError: continue`` may handle.
CATCHABLE_CATEGORIES: Final = frozenset(CATEGORIES) - {"Cancellation", "InterpreterCorruption"}
#: Categories a ``retry`` without ``retryOn`` does not retry.
NOT_RETRIED_BY_DEFAULT: Final = frozenset({"ValidationError", "ExpressionError"})


@dataclass
class RuntimeErrorInfo:
    """A structured runtime error as stored in projections and exposed to expressions."""

    category: str
    message: str
    node_path: str | None = None
    at: str | None = None
    code: str | None = None
    details: dict[str, Any] | None = field(default=None)

    @property
    def catchable(self) -> bool:
        """Whether authored error handling may see this error."""
        return self.category in CATCHABLE_CATEGORIES

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used in projections and in the expression context.

        The message is made storable (no NUL, valid Unicode) and cut to a bounded length: it is
        stored in the read model and sent to Temporal, whatever an action put in it.
        """
        out: dict[str, Any] = {"category": self.category, "message": safe_text(self.message)}
        if self.code is not None:
            out["code"] = self.code
        out["nodePath"] = self.node_path
        out["at"] = self.at
        if self.details is not None:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeErrorInfo:
        """Build from the JSON form; unknown categories become ``ActionError``."""
        category = data.get("category")
        if category not in CATEGORIES:
            category = "ActionError"
        return cls(
            category=str(category),
            message=str(data.get("message", "")),
            node_path=data.get("nodePath"),
            at=data.get("at"),
            code=None if data.get("code") is None else str(data.get("code")),
            details=data.get("details"),
        )


class RunError(Exception):
    """Raised inside the interpreter when a step fails with a structured error."""

    def __init__(self, info: RuntimeErrorInfo) -> None:
        """Wrap a structured error.

        Args:
            info: The structured error.
        """
        super().__init__(f"{info.category}: {info.message}")
        self.info = info
        #: Where the run stood when a failed action's error left its sequences, outermost first
        #: (continue-as-new frames): set only for an action failure that can be resumed.
        self.frames: list[dict[str, Any]] | None = None
        #: The container state of the step being unwound, waiting for its sequence's frame.
        self.resume_container: dict[str, Any] | None = None
