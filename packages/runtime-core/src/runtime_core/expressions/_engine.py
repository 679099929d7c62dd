"""JSONata evaluation for deterministic workflow code.

Facts about jsonata-python 0.7.1 that shape this module:

* Its per-call input validation walks the whole input document on every evaluation, so cost
  grows with the size of the context. Our contexts are built from JSON only, so validation is
  switched off and the cost no longer depends on context size.
* Its time/depth bounds are off by default, the timeout clock starts at compile time and the
  depth counter is not reset after an error: the bounds are re-armed before each evaluation.
* ``$now()``, ``$millis()`` and ``$random()`` would read the host clock and random generator;
  they are rebound to a per-thread clock that the interpreter sets to Temporal's deterministic
  time and seeded random before it evaluates.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonata
from jsonata import jexception

from runtime_core.errors import RunError, RuntimeErrorInfo

__all__ = [
    "CompiledExpression",
    "ExpressionBudgetExceeded",
    "ExpressionClock",
    "ExpressionEngine",
    "ExpressionParseError",
    "format_instant",
    "thread_engine",
    "use_clock",
]

#: Codes jsonata-python raises when a runtime bound is exceeded.
_DEPTH_CODE = "D1011"
_TIMEOUT_CODE = "D1012"


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


def _clock() -> ExpressionClock:
    clock = getattr(_local, "clock", None)
    if clock is None:
        clock = _system_clock()
    return clock


def _now(picture: Any = None, tz: Any = None) -> str:
    return format_instant(_clock().now())


def _millis() -> int:
    return int(_clock().now().timestamp() * 1000)


def _random() -> float:
    return _clock().random()


class ExpressionParseError(ValueError):
    """A JSONata source that does not parse."""

    def __init__(self, source: str, message: str, position: int | None, code: str | None) -> None:
        """Describe the parse failure.

        Args:
            source: The expression text.
            message: The parser's message.
            position: Character offset of the problem, when known.
            code: The JSONata error code (``S0xxx``).
        """
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.source = source
        self.message = message
        self.position = position
        self.code = code


class ExpressionBudgetExceeded(RuntimeError):
    """Raised when the wall-clock guard stops an evaluation.

    Time is not deterministic, so this is deliberately *not* a catchable ``ExpressionError``: it
    fails the workflow task, which operators see and Temporal retries.
    """


class CompiledExpression:
    """A parsed JSONata expression, reusable across evaluations."""

    __slots__ = ("_ast", "source")

    def __init__(self, source: str) -> None:
        """Parse ``source``.

        Args:
            source: JSONata text.

        Raises:
            ExpressionParseError: The text does not parse.
        """
        self.source = source
        try:
            ast = jsonata.Jsonata(source)
        except jexception.JException as err:
            raise ExpressionParseError(source, str(err), getattr(err, "location", None), getattr(err, "error", None)) from None
        except Exception as err:  # the parser raises plain errors on some inputs
            raise ExpressionParseError(source, str(err), None, None) from None
        ast.set_validate_input(False)
        ast.register_lambda("now", _now)
        ast.register_lambda("millis", _millis)
        ast.register_lambda("random", _random)
        self._ast = ast

    def evaluate(self, context: dict[str, Any], *, max_depth: int, timeout_ms: int) -> Any:
        """Evaluate against ``context`` with fresh bounds.

        Raises:
            RunError: ``ExpressionError`` for any failure of the expression itself.
            ExpressionBudgetExceeded: The wall-clock guard fired.
        """
        self._ast.environment.set_runtime_bounds(timeout_ms, max_depth)
        try:
            return self._ast.evaluate(context)
        except jexception.JException as err:
            code = getattr(err, "error", None)
            if code == _TIMEOUT_CODE:
                raise ExpressionBudgetExceeded(f"expression {self.source!r} ran longer than {timeout_ms} ms") from None
            message = str(err)
            if code == _DEPTH_CODE:
                message = f"expression exceeded its recursion budget of {max_depth}"
            raise RunError(
                RuntimeErrorInfo(
                    category="ExpressionError",
                    code=code,
                    message=f"{message} (in {self.source!r})",
                )
            ) from None
        except RecursionError:
            raise RunError(
                RuntimeErrorInfo(category="ExpressionError", message=f"expression {self.source!r} recursed too deeply")
            ) from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as err:
            raise RunError(
                RuntimeErrorInfo(category="ExpressionError", message=f"{err} (in {self.source!r})")
            ) from None


class ExpressionEngine:
    """Compiles and caches expressions; evaluation is bounded per call."""

    def __init__(self, *, max_depth: int = 200, timeout_ms: int = 2_000, cache_size: int = 4096) -> None:
        """Configure the bounds and the cache.

        Args:
            max_depth: Deterministic recursion budget of one evaluation.
            timeout_ms: Wall-clock guard of one evaluation (fails the workflow task).
            cache_size: How many compiled expressions to keep.
        """
        self.max_depth = max_depth
        self.timeout_ms = timeout_ms
        self._cache: OrderedDict[str, CompiledExpression] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, source: str) -> CompiledExpression:
        """Return the compiled form of ``source``, from the cache when possible.

        Raises:
            ExpressionParseError: The text does not parse.
        """
        with self._lock:
            hit = self._cache.get(source)
            if hit is not None:
                self._cache.move_to_end(source)
                return hit
        compiled = CompiledExpression(source)
        with self._lock:
            self._cache[source] = compiled
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return compiled

    def parse_problem(self, source: str) -> ExpressionParseError | None:
        """Return the parse error of ``source``, or ``None`` when it parses."""
        try:
            self.compile(source)
        except ExpressionParseError as err:
            return err
        return None

    def evaluate(self, source: str, context: dict[str, Any]) -> Any:
        """Evaluate ``source`` against ``context``.

        A parse failure at run time (which publishing prevents) is an ``ExpressionError``.
        """
        try:
            compiled = self.compile(source)
        except ExpressionParseError as err:
            raise RunError(RuntimeErrorInfo(category="ExpressionError", code=err.code, message=str(err))) from None
        return compiled.evaluate(context, max_depth=self.max_depth, timeout_ms=self.timeout_ms)


def thread_engine() -> ExpressionEngine:
    """This thread's engine.

    Compiled jsonata-python expressions keep mutable evaluation state, so they must not be
    shared between threads; one engine (and cache) per workflow-task thread is shared by every
    run that thread executes. This module is passed through the sandbox, so the cache survives
    across runs.
    """
    engine = getattr(_local, "engine", None)
    if engine is None:
        engine = ExpressionEngine()
        _local.engine = engine
    return engine
