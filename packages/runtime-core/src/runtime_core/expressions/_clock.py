"""Deterministic time and random for expressions (``$now()``, ``$millis()``, ``$random()``, ``$shuffle()``).

jsonata-python would read the host clock and the process's random generator; the interpreter
binds, around each evaluation, a per-thread clock that reads Temporal's workflow time and seeded
random instead, so replays see the same values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ExpressionClock", "format_instant", "millis", "now", "random", "use_clock"]


def format_instant(value: datetime) -> str:
    """Format an instant as RFC 3339 UTC with milliseconds and ``Z`` (what ``$now()`` returns)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class ExpressionClock:
    """Deterministic sources for ``$now()``, ``$millis()`` and ``$random()``."""

    now: Callable[[], datetime]
    random: Callable[[], float]


def _system_clock() -> ExpressionClock:
    import random as _random

    return ExpressionClock(now=lambda: datetime.now(UTC), random=_random.random)


_local = threading.local()


class use_clock:
    """Bind the clock that expressions see on this thread for the duration of a ``with`` block."""

    def __init__(self, clock: ExpressionClock) -> None:
        """Remember the clock to install.

        Args:
            clock: The deterministic time and random sources.
        """
        self._clock = clock
        self._previous: ExpressionClock | None = None

    def __enter__(self) -> ExpressionClock:
        self._previous = getattr(_local, "clock", None)
        _local.clock = self._clock
        return self._clock

    def __exit__(self, *exc: object) -> None:
        _local.clock = self._previous


def _current() -> ExpressionClock:
    clock = getattr(_local, "clock", None)
    if clock is None:
        clock = _system_clock()
    return clock


def now(picture: Any = None, tz: Any = None) -> str:
    """``$now()``: the bound clock's instant."""
    return format_instant(_current().now())


def millis() -> int:
    """``$millis()``: the bound clock's instant in milliseconds since the epoch."""
    return int(_current().now().timestamp() * 1000)


def random() -> float:
    """``$random()``: the bound clock's random number in [0, 1)."""
    return _current().random()
