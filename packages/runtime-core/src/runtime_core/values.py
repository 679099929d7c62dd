"""The JSON values the runtime accepts, and their limits.

Every value that enters the runtime (a launch payload, an event, a task response, a published
definition) or that a run builds and sends on (an assigned value, an action's input or output, a
run's result) must be JSON that both databases can store and Temporal accepts:

* strings and object keys are valid Unicode without U+0000 (PostgreSQL's ``jsonb`` refuses the NUL
  character, and a lone surrogate cannot be encoded as UTF-8): refused the same way on SQLite, so
  a definition behaves the same on both databases;
* numbers are finite (``NaN`` and ``Infinity`` are not JSON) and integers fit in 64 bits;
* nesting is at most :data:`MAX_DEPTH` deep;
* the UTF-8 encoded JSON is at most a documented number of bytes, well below Temporal's 2 MB
  payload limit, so nothing the runtime sends is refused by Temporal after the read model has
  recorded it.

This module is deterministic and does no I/O: the interpreter uses it inside workflow code.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_DURATION_MS",
    "MAX_ERROR_MESSAGE_CHARS",
    "MAX_INT",
    "MAX_RUN_INPUT_BYTES",
    "MAX_STATE_BYTES",
    "MAX_VALUE_BYTES",
    "ValueProblem",
    "check_value",
    "describe_size",
    "json_copy",
    "json_size",
    "node_problem",
    "safe_text",
]

#: One value: a launch payload, an event payload, a task response, an assigned value, an
#: action's input or output.
MAX_VALUE_BYTES: Final = 512 * 1024
#: A run's data as a whole (``payload`` + ``vars`` + ``error``): its result, a continue-as-new
#: checkpoint, a child's payload.
MAX_STATE_BYTES: Final = 1024 * 1024
#: A published definition (canonical JSON).
MAX_DEFINITION_BYTES: Final = 256 * 1024
#: A run's start input as Temporal receives it (the pinned definition, every pinned child
#: definition and the payload, in the client's JSON encoding): below Temporal's 2 MB blob limit,
#: with room for the request's other fields.
MAX_RUN_INPUT_BYTES: Final = 2 * 1024 * 1024 - 64 * 1024
#: Deepest nesting of arrays and objects.
MAX_DEPTH: Final = 100
#: Largest integer magnitude (64-bit signed); larger numbers travel as strings.
MAX_INT: Final = 2**63 - 1
#: Longest duration the runtime honours (timers, timeouts, retry delays): 100 years, far inside
#: what Python's ``timedelta`` and Temporal's timers can represent.
MAX_DURATION_MS: Final = 36525 * 24 * 3600 * 1000  # 3,155,760,000,000
#: Error messages are cut to this many characters before they are stored or sent.
MAX_ERROR_MESSAGE_CHARS: Final = 2000

# A run of 19+ digits outside a string might be an integer beyond 64 bits: only then is the
# value walked to be sure (the walk is the slow path).
_LONG_DIGITS = re.compile(r"\d{19,}")


class ValueProblem(ValueError):
    """A value the runtime cannot accept; the message names where it is, what is wrong and the fix."""

    def __init__(self, where: str, reason: str, *, code: str = "INVALID_VALUE") -> None:
        """Describe the problem.

        Args:
            where: Path of the offending part (``payload.items[3].name``).
            reason: What is wrong and what to do instead.
            code: Machine-readable code (``VALUE_TOO_LARGE``, ``INVALID_VALUE``).
        """
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.code = code


def describe_size(size: int) -> str:
    """A byte count for people: ``812 bytes``, ``3.1 KB``, ``2.4 MB``."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def json_copy(value: Any) -> Any:
    """Deep copy of a JSON value (faster than ``copy.deepcopy`` for plain JSON)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (assumes a valid value; see :func:`check_value`)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def check_value(value: Any, where: str, *, limit: int = MAX_VALUE_BYTES, what: str = "value") -> int:
    """Check that ``value`` is JSON the runtime can store and send; return its size in bytes.

    The common case costs one ``json.dumps`` in C; only a value that fails it (or looks
    suspicious) is walked in Python to name the exact path of the problem.

    Args:
        value: The value.
        where: Its path, used in messages (``payload``, ``vars.total``, ``event.payload``).
        limit: Largest accepted size of its UTF-8 JSON, in bytes.
        what: What the value is, for the size message (``value``, ``action output``).

    Raises:
        ValueProblem: The value is not acceptable; the message names the path and the fix.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        data = text.encode("utf-8")
    except (TypeError, ValueError, RecursionError, OverflowError):
        _walk(value, where)
        raise ValueProblem(where, "is not a JSON value") from None  # the walk always finds it first
    if "\\u0000" in text or _LONG_DIGITS.search(text):
        _walk(value, where)
    if len(data) > limit:
        raise ValueProblem(
            where, f"the {what} is {describe_size(len(data))}, over the limit of {describe_size(limit)}; keep large data outside the run and pass a reference",
            code="VALUE_TOO_LARGE",
        )
    if len(data) > 2 * MAX_DEPTH and text.count("[") + text.count("{") > MAX_DEPTH:
        _walk(value, where)  # only a value with that many containers can nest too deep
    return len(data)


def _walk(value: Any, where: str) -> None:
    """Find the first unacceptable part of ``value`` and raise for it."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueProblem(path, f"nests deeper than {MAX_DEPTH} levels; flatten the data")
        problem = node_problem(node, path)
        if problem is not None:
            raise problem
        if isinstance(node, dict):
            for key, item in node.items():
                stack.append((item, f"{path}.{key}", depth + 1))
        elif isinstance(node, list | tuple):
            for index, item in enumerate(node):
                stack.append((item, f"{path}[{index}]", depth + 1))


def node_problem(node: Any, path: str) -> ValueProblem | None:
    """The problem of one node of a value, without looking inside its items (an object's keys are its own).

    A building block for walks that name paths their own way (publishing names step paths); see
    :func:`check_value` for a whole value.
    """
    try:
        if node is None or isinstance(node, bool):
            return None
        if isinstance(node, str):
            _check_text(node, path)
        elif isinstance(node, int):
            if abs(node) > MAX_INT:
                return ValueProblem(path, "is an integer beyond 64 bits; send it as a string")
        elif isinstance(node, float):
            if not math.isfinite(node):
                return ValueProblem(path, f"is {node}, which is not a JSON number")
        elif isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    return ValueProblem(path, f"has a key of type {type(key).__name__}; object keys must be strings")
                _check_text(key, f"{path} (key {safe_text(key, 40)!r})")
        elif not isinstance(node, list | tuple):
            return ValueProblem(path, f"is a {type(node).__name__}, not a JSON value")
    except ValueProblem as problem:
        return problem
    return None


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValueProblem(path, "contains the NUL character (U+0000), which the runtime cannot store; remove it or encode the data (for example as base64)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueProblem(path, "contains a lone surrogate (invalid Unicode); send valid UTF-8 text") from None


def safe_text(text: str, limit: int = MAX_ERROR_MESSAGE_CHARS) -> str:
    """``text`` made storable for messages: NUL and lone surrogates replaced, cut to ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
