"""What the API and CLI show: every value redacted by the tenant's rules and of secret references.

A rule is a ``path`` or a ``key`` pattern:

* ``path``: dotted segments from one of the displayed roots, ``*`` standing for any one segment
  (an object key or an array index): ``payload.card.number``, ``vars.*.ssn``,
  ``payload.items.*.iban``. The roots are ``payload``, ``vars``, ``meta``, ``error``, ``input`` and
  ``output`` (of a step or action invocation), ``event`` (an event's payload), ``context`` (a
  task's context data) and ``response`` (a task's response).
* ``key``: a key name pattern with ``*`` (case-insensitive), matched at any depth under any root:
  ``*password*``, ``ssn``.

A matched value, whatever it is, is shown as ``"[REDACTED]"``. Secret references
(``{"$secret": NAME}``) are always shown as ``"[REDACTED]"``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runtime_core.secrets import REDACTED, redact

__all__ = ["ROOTS", "Redactor", "rule_problem"]

#: The roots a path rule may start with.
ROOTS = ("payload", "vars", "meta", "error", "input", "output", "event", "context", "response")
_SEGMENT = re.compile(r"^[^.\s]+$")


def rule_problem(kind: str, pattern: str) -> str | None:
    """Why a rule cannot be used, or ``None``."""
    if kind == "path":
        segments = pattern.split(".")
        if segments[0] not in ROOTS:
            return f"a path rule starts with one of {', '.join(ROOTS)}, not {segments[0]!r}"
        if len(segments) < 2 or not all(_SEGMENT.match(s) for s in segments):
            return "a path rule is dotted segments with at least one after the root, '*' for any one segment (payload.card.*)"
        return None
    if kind == "key":
        return None if pattern.strip() and "." not in pattern else "a key rule is one key name pattern, '*' for anything (*password*)"
    return f"kind must be 'path' or 'key', not {kind!r}"


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: str


class Redactor:
    """Applies a tenant's rules (and secret-reference redaction) to values before they are shown."""

    def __init__(self, rules: Iterable[tuple[str, str]] = ()) -> None:
        """Compile ``(kind, pattern)`` rules."""
        self._paths: list[list[str]] = []
        self._keys: list[re.Pattern[str]] = []
        for kind, pattern in rules:
            if kind == "path":
                self._paths.append(pattern.split("."))
            elif kind == "key":
                self._keys.append(re.compile(fnmatch.translate(pattern.lower())))

    def apply(self, value: Any, root: str) -> Any:
        """A redacted copy of ``value`` shown under ``root`` (one of :data:`ROOTS`)."""
        value = redact(value)
        if not self._paths and not self._keys:
            return value
        live = [p[1:] for p in self._paths if p[0] == root]
        return self._walk(value, live)

    def _walk(self, value: Any, paths: list[list[str]]) -> Any:
        if any(not p for p in paths):
            return REDACTED  # a path rule ends here
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if any(k.match(str(key).lower()) for k in self._keys):
                    out[key] = REDACTED
                    continue
                out[key] = self._walk(item, [p[1:] for p in paths if p[0] in ("*", key)])
            return out
        if isinstance(value, list):
            return [self._walk(item, [p[1:] for p in paths if p[0] in ("*", str(index))]) for index, item in enumerate(value)]
        return value
