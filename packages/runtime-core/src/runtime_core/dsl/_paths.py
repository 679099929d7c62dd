"""Assignment paths: ``payload.a.b``, ``vars.x.y`` or unscoped ``x.y`` (meaning ``vars.x.y``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["READ_ONLY_ROOTS", "PathError", "parse_assign_path"]

_SEGMENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
#: Roots of the expression context that authored steps can never assign.
READ_ONLY_ROOTS = frozenset({"meta", "error", "childRun", "loop"})


class PathError(ValueError):
    """An assignment target that is not an assignable path."""


def parse_assign_path(path: str, loop_locals: Iterable[str] = ()) -> tuple[str, list[str]]:
    """Split an assignment path into its scope (``payload`` or ``vars``) and key segments.

    Args:
        path: The author's path.
        loop_locals: Item variable names visible at this point, which cannot be assigned.

    Returns:
        ``(scope, segments)``, with at least one segment.

    Raises:
        PathError: The path is empty, malformed, or targets a read-only root.
    """
    if not isinstance(path, str) or not path:
        raise PathError("an assignment path must be a non-empty string such as 'vars.total'")
    parts = path.split(".")
    for part in parts:
        if not _SEGMENT.match(part):
            raise PathError(f"{path!r} is not a dot path of identifiers (bad segment {part!r})")
    head = parts[0]
    if head in READ_ONLY_ROOTS or head in set(loop_locals):
        raise PathError(f"{path!r} targets {head!r}, which cannot be assigned; use 'vars.…' or 'payload.…'")
    if head in ("payload", "vars"):
        if len(parts) == 1:
            raise PathError(f"{path!r} would replace the whole {head} scope; name a key inside it, e.g. '{head}.result'")
        return head, parts[1:]
    return "vars", parts
