"""The action registry and the built-in actions."""

from runtime_core.actions._builtins import register_builtins
from runtime_core.actions._registry import (
    ENTRY_POINT_GROUP,
    ActionContext,
    ActionFailure,
    ActionHandler,
    ActionRegistry,
    ActionSpec,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionContext",
    "ActionFailure",
    "ActionHandler",
    "ActionRegistry",
    "ActionSpec",
    "register_builtins",
]
