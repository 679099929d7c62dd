"""Aligned text tables and cell formatting for ``wfr``'s human output (``--json`` prints the models)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from runtime_core.values import safe_text

__all__ = ["cell", "compact_json", "duration", "instant", "table"]

_CONTROLS = {c: "\ufffd" for c in [*range(0x20), 0x7F]}

#: A cell longer than this is cut, ending with ``…`` (``--json`` shows everything).
MAX_CELL = 72


def compact_json(value: Any, limit: int | None = None) -> str:
    """``value`` as one line of JSON, cut at ``limit`` characters."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def instant(value: str | None) -> str:
    """An RFC 3339 instant to the second (``2026-11-25T10:00:00Z``); ``-`` for none."""
    if not value:
        return "-"
    if len(value) == 24 and value[19] == "." and value.endswith("Z"):
        return value[:19] + "Z"
    return value


def duration(ms: int | None) -> str:
    """Milliseconds as ``340 ms``, ``12.5 s``, ``4 m 05 s``, ``2 h 03 m``, ``3 d 04 h``; ``-`` for none."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} m"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def cell(value: Any, limit: int = MAX_CELL) -> str:
    """One printable line for a table cell: ``-`` for none, JSON for objects and lists."""
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, dict | list):
        text = compact_json(value)
    else:
        text = str(value)
    text = safe_text(" ".join(text.split()).translate(_CONTROLS) or "-", limit + 1)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, indent: str = "", right: Iterable[int] = ()) -> list[str]:
    """Lines of an aligned table: a header row, then one line per row (cells through :func:`cell`).

    Args:
        headers: Column titles.
        rows: Cell values, one sequence per row.
        indent: Put before every line.
        right: Indexes of columns aligned to the right (numbers).
    """
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    aligned_right = set(right)

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if i in aligned_right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(headers)), *(line(r) for r in texts)]
