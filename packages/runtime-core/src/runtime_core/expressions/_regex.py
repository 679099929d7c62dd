"""Linear-time regular expressions (RE2) for JSONata regex literals and JSON Schema patterns.

Python's ``re`` backtracks: ``/(a+)+$/`` against 30 ``a``s and a ``!`` runs for minutes, holding
the GIL, so one hostile expression froze every run of a worker. RE2 matches in time linear in
the input and refuses what it cannot do in linear time (backreferences, lookaround).

jsonata-python hands the text between the slashes of a regex literal to its ``regex_engine`` as it
is (no JavaScript-to-Python translation), so patterns follow the engine's syntax. RE2's syntax is
the common subset of JavaScript's and Python's, with these differences that authors may meet:

* ``\\uXXXX`` (JavaScript and Python) is translated to RE2's ``\\x{XXXX}``;
* ``\\d``, ``\\w`` and ``\\b`` are ASCII-only (as in JavaScript; Python's ``re`` is Unicode-aware);
* ``$`` without the ``m`` flag matches only at the very end (as in JavaScript; Python also
  matches before a final newline);
* backreferences (``\\1``), lookahead/lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), atomic
  groups and possessive quantifiers are refused (:class:`RegexUnsupported`).

Replacement templates (``$replace`` turns ``$1`` into ``\\g<1>``) keep Python's ``re`` semantics
exactly: they are parsed by Python's own template parser, so errors and escapes are unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from re import _parser as _sre_parser  # type: ignore[attr-defined]
from typing import Any

import re2
from jsonata.regex_engine import RegexFlags

from runtime_core.expressions._bounds import Budget, active_budget

__all__ = ["Re2Pattern", "RegexUnsupported", "compile_re2", "re2_engine", "translate"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr

_HEX = frozenset("0123456789abcdefABCDEF")

#: Evaluation steps charged per match found within a bounded evaluation: google-re2 spends about
#: 6 µs of Python per match (three steps' worth).
STEPS_PER_MATCH = 3


class RegexUnsupported(ValueError):
    """A pattern that Python's ``re`` accepts but RE2 cannot run in linear time.

    Attributes:
        pattern: The pattern as written.
        reason: RE2's explanation.
    """

    def __init__(self, pattern: str, reason: str) -> None:
        """Describe the refused pattern."""
        super().__init__(
            f"regex /{pattern}/ uses syntax the linear-time engine (RE2) does not support: {reason}; "
            "rewrite it without backreferences, lookahead/lookbehind, atomic groups or possessive quantifiers"
        )
        self.pattern = pattern
        self.reason = reason


def translate(pattern: str) -> str:
    """Rewrite JavaScript/Python escapes RE2 spells differently (``\\uXXXX`` → ``\\x{XXXX}``)."""
    if "\\u" not in pattern:
        return pattern
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "u" and i + 6 <= n and all(c in _HEX for c in pattern[i + 2 : i + 6]):
                out.append("\\x{" + pattern[i + 2 : i + 6] + "}")
                i += 6
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _error_text(err: Exception) -> str:
    reason = err.args[0] if err.args else str(err)
    if isinstance(reason, bytes):  # google-re2 reports RE2's message as UTF-8 bytes
        return reason.decode("utf-8", "replace")
    return str(reason)


@functools.lru_cache(maxsize=1024)
def compile_re2(pattern: str, case_insensitive: bool = False, multiline: bool = False) -> Re2Pattern:
    """Compile ``pattern`` with RE2 (cached).

    Raises:
        RegexUnsupported: Python's ``re`` compiles it but RE2 cannot (backreferences, lookaround).
        re.error: The pattern is invalid for both engines.
    """
    prefix = ("i" if case_insensitive else "") + ("m" if multiline else "")
    source = (f"(?{prefix})" if prefix else "") + translate(pattern)
    try:
        compiled = re2.compile(source, _OPTIONS)
    except re2.error as err:
        reason = _error_text(err)
        try:
            re.compile(pattern)  # compiling never backtracks; matching is what RE2 replaces
        except (re.error, RecursionError, OverflowError, ValueError):
            raise re.error(f"invalid regex /{pattern}/: {reason}") from None
        raise RegexUnsupported(pattern, reason) from None
    return Re2Pattern(pattern, compiled)


def re2_engine(pattern: str, flags: RegexFlags) -> Re2Pattern:
    """jsonata-python ``regex_engine``: compile a regex literal's pattern and flags with RE2."""
    return compile_re2(pattern, flags.case_insensitive, flags.multiline)


class Re2Pattern:
    """An RE2 pattern with the part of ``re.Pattern``'s interface jsonata-python uses."""

    __slots__ = ("_re", "pattern")

    def __init__(self, pattern: str, compiled: Any) -> None:
        """Wrap a compiled RE2 pattern; ``pattern`` is the text as written."""
        self.pattern = pattern
        self._re = compiled

    def __repr__(self) -> str:
        return f"Re2Pattern({self.pattern!r})"

    @property
    def groups(self) -> int:
        """Number of capturing groups."""
        return int(self._re.groups)

    @property
    def groupindex(self) -> dict[str, int]:
        """Named groups and their numbers."""
        return dict(self._re.groupindex)

    def search(self, string: str, pos: int | None = None, endpos: int | None = None) -> Any:
        """First match anywhere in ``string``, or ``None``."""
        return self._re.search(string, pos, endpos)

    def match(self, string: str, pos: int | None = None, endpos: int | None = None) -> Any:
        """Match anchored at the start, or ``None``."""
        return self._re.match(string, pos, endpos)

    def fullmatch(self, string: str, pos: int | None = None, endpos: int | None = None) -> Any:
        """Match of the whole string, or ``None``."""
        return self._re.fullmatch(string, pos, endpos)

    def finditer(self, string: str, pos: int | None = None, endpos: int | None = None) -> Iterator[Any]:
        """Every non-overlapping match, left to right (empty matches as in ``re``).

        Within a bounded evaluation each match is charged (one unit, plus one per group) as it is
        produced, so a pattern that matches at every position cannot build millions of matches.
        """
        matches = self._re.finditer(string, pos, endpos)
        budget = active_budget()
        if budget is None:
            return matches  # type: ignore[no-any-return]
        return self._charged(matches, budget)

    def _charged(self, matches: Iterator[Any], budget: Budget) -> Iterator[Any]:
        units = 1 + self.groups
        what = f"the matches of /{self.pattern[:60]}/"
        for found in matches:
            budget.charge_steps(STEPS_PER_MATCH, what)
            budget.charge(units, what)
            yield found

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        """Split like ``re.Pattern.split``: groups included, empty matches as in ``finditer``."""
        if maxsplit < 0:
            return [string]
        pieces: list[str] = []
        end = 0
        for done, found in enumerate(self.finditer(string), start=1):
            pieces.append(string[end : found.start()])
            pieces.extend(found.group(group) for group in range(1, self.groups + 1))
            end = found.end()
            if maxsplit and done >= maxsplit:
                break
        pieces.append(string[end:])
        return pieces

    def sub(self, repl: str | Callable[[Any], str], string: str, count: int = 0) -> str:
        """Replace matches like ``re.Pattern.sub``; a string template follows ``re``'s rules."""
        expand = repl if callable(repl) else _template(repl, self)
        budget = active_budget()
        pieces: list[str] = []
        end = 0
        for done, found in enumerate(self.finditer(string), start=1):
            pieces.append(string[end : found.start()])
            piece = expand(found)
            if budget is not None:
                budget.charge(1 + len(piece) + found.start() - end, "the string built by a regex replacement")
            pieces.append(piece)
            end = found.end()
            if count and done >= count:
                break
        pieces.append(string[end:])
        return "".join(pieces)


def _template(repl: str, pattern: Re2Pattern) -> Callable[[Any], str]:
    """Parse a replacement template with Python's own parser (same escapes, same errors)."""
    parsed = _sre_parser.parse_template(repl, pattern)
    if isinstance(parsed, tuple):  # Python 3.11: (groups [(literal index, group)], literals)
        group_slots, literals = parsed

        def expand_311(found: Any) -> str:
            parts = list(literals)
            for index, group in group_slots:
                parts[index] = found.group(group) or ""
            return "".join(parts)

        return expand_311

    items = list(parsed)  # Python 3.12+: [literal, group, literal, group, ..., literal]

    def expand_312(found: Any) -> str:
        return "".join(item if isinstance(item, str) else (found.group(item) or "") for item in items)

    return expand_312
