"""Publish-time checks of ``schedule`` and ``recurring`` triggers: instants, cron expressions, zones.

Pure functions (no clock, no I/O): deterministic-safe like the rest of :mod:`runtime_core.dsl`.

Accepted cron syntax (what Temporal Schedules accept, checked strictly so a definition never
publishes with an expression Temporal would refuse later):

- Five fields separated by spaces: minute (0-59), hour (0-23), day of month (1-31), month
  (1-12 or ``JAN``-``DEC``), day of week (0-6, Sunday = 0, or ``SUN``-``SAT``). Each field is
  ``*`` or a comma-separated list of items; an item is a number or name, a range ``a-b``
  (``a`` ≤ ``b``), or either of those or ``*`` followed by a step ``/n`` (n ≥ 1). Names are
  case-insensitive.
- The macros ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``,
  ``@hourly``.
- ``@every <duration>``: a Go duration of one or more ``<number><unit>`` parts, units ``s``,
  ``m``, ``h`` or ``ms`` (``@every 10s``, ``@every 1h30m``), at least one second in all.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Final

__all__ = ["CRON_MACROS", "cron_problem", "parse_instant", "run_at_problem", "timezone_problem"]

#: Macros accepted in place of five fields.
CRON_MACROS: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
#: (name, lowest, highest, names numbered from ``lowest``)
_FIELDS: Final = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$", re.IGNORECASE)
_EVERY_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_FIX = "such as '*/15 9-17 * * MON-FRI', '@daily' or '@every 10m' (see docs/dsl.md, Triggers)"


def parse_instant(value: str) -> datetime | None:
    """An RFC 3339 instant with an offset (``2026-11-25T10:00:00Z``), or ``None`` if it is not one."""
    if not isinstance(value, str) or not _INSTANT.match(value):
        return None
    text = value.upper().replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:  # Python parses at most microseconds: drop digits beyond six
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6]}{rest[digits.end():]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def run_at_problem(value: str) -> str | None:
    """Why ``runAt`` is not usable (a message naming the fix), or ``None``."""
    if parse_instant(value) is None:
        return f"runAt {value[:60]!r} is not an RFC 3339 instant with an offset; write it like '2026-11-25T10:00:00Z' or '2026-11-25T11:00:00+01:00'"
    return None


def timezone_problem(value: str) -> str | None:
    """Why ``timezone`` is not an IANA zone name (a message naming the fix), or ``None``."""
    fix = "use an IANA zone name such as 'UTC', 'Europe/Paris' or 'America/New_York'"
    if not value or value != value.strip() or value.startswith(("/", ".")) or ".." in value or "\x00" in value or len(value) > 100:
        return f"timezone {value[:60]!r} is not an IANA time zone; {fix}"
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"timezone {value[:60]!r} is not an IANA time zone; {fix}"
    return None


def cron_problem(value: str) -> str | None:
    """Why ``cron`` is not an expression Temporal Schedules accept (a message naming the fix), or ``None``."""
    shown = repr(value[:80])
    text = value.strip()
    if not text:
        return f"cron is empty; write an expression {_FIX}"
    if text.startswith("@"):
        if text.lower() in CRON_MACROS:
            return None
        every = _EVERY.match(text)
        if every:
            seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _EVERY_PART.findall(every.group(1)))
            if seconds < 1:
                return f"cron {shown}: the interval is shorter than one second; use at least '@every 1s'"
            return None
        return f"cron {shown} is not a known macro; use one of {', '.join(sorted(CRON_MACROS))} or '@every <duration>' like '@every 10m'"
    fields = text.split()
    if len(fields) != 5:
        return f"cron {shown} has {len(fields)} field(s); write five (minute hour day-of-month month day-of-week), {_FIX}"
    for (name, low, high, names), field in zip(_FIELDS, fields, strict=True):
        problem = _field_problem(field, name, low, high, names)
        if problem is not None:
            return f"cron {shown}: {problem}; write an expression {_FIX}"
    return None


def _field_problem(field: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for item in field.split(","):
        if not item:
            return f"the {name} field {field!r} has an empty list item"
        base, slash, step = item.partition("/")
        if slash and (not (step.isdigit() and step.isascii()) or int(step) < 1):
            return f"the step {step!r} in the {name} field must be a whole number of at least 1"
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = _value(start, low, high, names)
        if first is None:
            return _out_of_range(start, name, low, high, names)
        if dash:
            last = _value(end, low, high, names)
            if last is None:
                return _out_of_range(end, name, low, high, names)
            if first > last:
                return f"the range {base!r} in the {name} field runs backwards; write the lower bound first"
    return None


def _value(token: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if token.isdigit() and token.isascii():
        number = int(token)
        return number if low <= number <= high else None
    upper = token.upper()
    if upper in names:
        return names.index(upper) + low
    return None


def _out_of_range(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str:
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    return f"{token[:20]!r} is not a valid {name} ({allowed})"
