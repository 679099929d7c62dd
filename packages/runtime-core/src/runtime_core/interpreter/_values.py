"""Pure helpers of the interpreter: JSON copies, truthiness, value mapping, assignment."""

from __future__ import annotations

from typing import Any

from runtime_core.dsl._paths import PathError, parse_assign_path
from runtime_core.errors import RunError, RuntimeErrorInfo
from runtime_core.values import json_copy

__all__ = ["assign_path", "json_copy", "truthy"]


def truthy(value: Any) -> bool:
    """JSONata ``$boolean()`` truthiness."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    if isinstance(value, dict):
        return len(value) > 0
    return True  # functions


def assign_path(scopes: dict[str, dict[str, Any]], path: str, value: Any, loop_locals: tuple[str, ...] = ()) -> None:
    """Assign ``value`` (copied) at ``path`` in ``scopes`` (``payload``/``vars``), creating objects.

    Raises:
        RunError: ``ExpressionError`` when the path is not assignable or crosses a non-object.
    """
    try:
        scope, segments = parse_assign_path(path, loop_locals)
    except PathError as err:
        raise RunError(RuntimeErrorInfo(category="ExpressionError", message=str(err))) from None
    node = scopes[scope]
    for depth, key in enumerate(segments[:-1]):
        nxt = node.get(key)
        if nxt is None:
            nxt = {}
            node[key] = nxt
        elif not isinstance(nxt, dict):
            where = ".".join([scope, *segments[: depth + 1]])
            raise RunError(RuntimeErrorInfo(category="ExpressionError", message=f"cannot assign {path!r}: {where} holds a {type(nxt).__name__}, not an object"))
        node = nxt
    node[segments[-1]] = json_copy(value)
