"""JSONata evaluation for deterministic workflow code, within deterministic budgets.

Facts about jsonata-python 0.7.1 that shape this module:

* Its per-call input validation walks the whole input document on every evaluation, so cost
  grows with the size of the context. Our contexts are built from JSON only, so validation is
  switched off and the cost no longer depends on context size.
* Its only bounds are a depth counter and a wall-clock timeout (``Timebox``). Neither stops a
  tail-recursive loop or a step that builds a huge value deterministically, so each evaluation
  here runs with a fresh :class:`~runtime_core.expressions._bounds.Budget` of evaluation steps,
  nesting depth and size (see ``_bounded`` for where it is charged, ``docs/expressions.md`` for
  the limits and their measured worst cases). Exceeding one is a catchable ``ExpressionError``,
  the same on every replay. The wall clock remains as a backstop only.
* Regex literals are compiled with RE2 (``_regex``), which matches in linear time.
* ``$now()``, ``$millis()``, ``$random()`` and ``$shuffle()`` read the per-thread clock that the
  interpreter binds to Temporal's deterministic time and seeded random (``_clock``).
* Common shapes (paths, comparisons, arithmetic, filters, a few aggregate functions) also get a
  fast closure (``_fast``) compiled once from the same AST; each evaluation tries it first and
  falls back to jsonata-python for anything it does not handle exactly, including every error.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Final

from jsonata import jexception
from jsonata.jsonata import Jsonata
from jsonata.utils import Utils

from runtime_core.errors import RunError, RuntimeErrorInfo
from runtime_core.expressions._bounded import BoundedJsonata
from runtime_core.expressions._bounds import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_MS,
    Budget,
    BudgetExceeded,
    ExpressionRefused,
    WallClockExceeded,
    finish_result,
)
from runtime_core.expressions._clock import ExpressionClock, format_instant, millis, now, random, use_clock
from runtime_core.expressions._fast import FastExpression, compile_fast
from runtime_core.expressions._regex import RegexUnsupported

__all__ = [
    "BUDGET_CODE",
    "REGEX_UNSUPPORTED_CODE",
    "CompiledExpression",
    "ExpressionBudgetExceeded",
    "ExpressionClock",
    "ExpressionEngine",
    "ExpressionParseError",
    "ExpressionRegexUnsupported",
    "format_instant",
    "thread_engine",
    "use_clock",
]

#: ``code`` of the ExpressionError raised when an evaluation exceeds a deterministic budget;
#: ``details`` name the ``bound`` and its ``limit``.
BUDGET_CODE: Final = "EXPRESSION_BUDGET_EXCEEDED"
#: ``code`` of a regex that RE2 cannot run (at publish, and at run time through ``$eval``).
REGEX_UNSUPPORTED_CODE: Final = "EXPRESSION_REGEX_UNSUPPORTED"

_BOUND_TEXT: Final = {
    "steps": "evaluation steps",
    "depth": "levels of nesting (recursion)",
    "size": "size units (characters and items built or processed)",
}
_BOUND_ADVICE: Final = {
    "steps": "process less data per expression (page through it with control.forEach) or simplify it",
    "depth": "recursion this deep is not supported; use $reduce or a loop of steps",
    "size": "build smaller values (large data belongs outside the run, passed by reference)",
}


_local = threading.local()

_NULL: Final = Utils.NULL_VALUE


def _shown(source: str, limit: int = 200) -> str:
    return repr(source if len(source) <= limit else source[: limit - 1] + "…")


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


class ExpressionRegexUnsupported(ExpressionParseError):
    """A regex literal that RE2 cannot run in linear time (backreferences, lookaround)."""

    def __init__(self, source: str, problem: RegexUnsupported) -> None:
        """Describe the refused regex of ``source``."""
        super().__init__(source, str(problem), None, REGEX_UNSUPPORTED_CODE)
        self.problem = problem


class ExpressionBudgetExceeded(RuntimeError):
    """Raised when the wall-clock guard stops an evaluation.

    Time is not deterministic, so this is deliberately *not* a catchable ``ExpressionError``: it
    fails the workflow task, which operators see and Temporal retries.
    """


class CompiledExpression:
    """A parsed JSONata expression, reusable across evaluations (on one thread)."""

    __slots__ = ("_ast", "_fast", "source")

    def __init__(self, source: str) -> None:
        """Parse ``source``.

        Args:
            source: JSONata text.

        Raises:
            ExpressionRegexUnsupported: A regex literal RE2 cannot run.
            ExpressionParseError: The text does not parse.
        """
        self.source = source
        try:
            ast = BoundedJsonata(source)
        except RegexUnsupported as err:
            raise ExpressionRegexUnsupported(source, err) from None
        except jexception.JException as err:
            raise ExpressionParseError(source, str(err), getattr(err, "location", None), getattr(err, "error", None)) from None
        except Exception as err:  # the parser raises plain errors on some inputs (and re.error)
            raise ExpressionParseError(source, str(err), None, None) from None
        ast.set_validate_input(False)
        ast.set_output_convert_nulls(False)  # done by finish_result, which also counts the result
        ast.register_lambda("now", now)
        ast.register_lambda("millis", millis)
        ast.register_lambda("random", random)
        self._ast = ast
        self._fast: FastExpression | None = compile_fast(ast.ast)

    @property
    def fast(self) -> bool:
        """Whether the fast path (``_fast``) compiled this expression."""
        return self._fast is not None

    def evaluate(
        self,
        context: dict[str, Any],
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_size: int = DEFAULT_MAX_SIZE,
        bindings: dict[str, Any] | None = None,
    ) -> Any:
        """Evaluate against ``context`` with a fresh budget (``bindings``: extra ``$variables``).

        The fast closure runs first when there is one and the depth budget leaves room for it; it
        gives up (and jsonata-python evaluates) on any error, unhandled value or bound.

        Raises:
            RunError: ``ExpressionError`` for any failure of the expression itself, including an
                exceeded budget (``code`` :data:`BUDGET_CODE`).
            ExpressionBudgetExceeded: The wall-clock backstop fired.
        """
        fast = self._fast
        if fast is not None and 2 * fast.depth <= max_depth:
            try:
                result = fast.run(context, bindings, max_steps, max_size)
            except Exception:
                pass
            else:
                if result is None or not isinstance(result, (list, dict)):
                    return None if result is _NULL else result
                try:
                    return finish_result(result, Budget(max_steps, max_depth, max_size // 2, timeout_ms))
                except BudgetExceeded:
                    pass
        return self.evaluate_slow(
            context, max_depth=max_depth, timeout_ms=timeout_ms, max_steps=max_steps, max_size=max_size, bindings=bindings
        )

    def evaluate_slow(
        self,
        context: dict[str, Any],
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_size: int = DEFAULT_MAX_SIZE,
        bindings: dict[str, Any] | None = None,
    ) -> Any:
        """Evaluate with jsonata-python only (the reference; :meth:`evaluate` without the fast path).

        Raises:
            RunError: As :meth:`evaluate`.
            ExpressionBudgetExceeded: As :meth:`evaluate`.
        """
        ast = self._ast
        budget = Budget(max_steps, max_depth, max_size, timeout_ms)
        ast.budget = budget
        current = Jsonata.CURRENT
        previous = getattr(current, "jsonata", None)
        # jsonata-python evaluates through the thread's "current" instance; make it this one.
        current.jsonata = ast
        try:
            with budget:
                return finish_result(ast.evaluate(context, bindings), budget)
        except BudgetExceeded as err:
            raise RunError(
                RuntimeErrorInfo(
                    category="ExpressionError",
                    code=BUDGET_CODE,
                    message=(
                        f"expression exceeded its budget of {err.limit:,} {_BOUND_TEXT.get(err.bound, err.bound)} "
                        f"({err.what}); {_BOUND_ADVICE.get(err.bound, '')} (in {_shown(self.source)})"
                    ),
                    details={"bound": err.bound, "limit": err.limit},
                )
            ) from None
        except WallClockExceeded:
            raise ExpressionBudgetExceeded(
                f"expression {_shown(self.source)} ran longer than {budget.timeout_ms} ms "
                f"(after {budget.steps:,} steps, {budget.size:,} size units)"
            ) from None
        except jexception.JException as err:
            raise RunError(self._expression_error(err)) from None
        except ExpressionRefused as err:
            raise RunError(RuntimeErrorInfo(category="ExpressionError", code=err.code, message=f"{err} (in {_shown(self.source)})")) from None
        except RegexUnsupported as err:  # a regex built at run time ($toMillis pictures)
            raise RunError(RuntimeErrorInfo(category="ExpressionError", code=REGEX_UNSUPPORTED_CODE, message=f"{err} (in {_shown(self.source)})")) from None
        except RecursionError:
            raise RunError(
                RuntimeErrorInfo(category="ExpressionError", message=f"expression {_shown(self.source)} recursed too deeply")
            ) from None
        except Exception as err:  # any other failure of the expression is the expression's error
            raise RunError(
                RuntimeErrorInfo(category="ExpressionError", message=f"{type(err).__name__}: {err} (in {_shown(self.source)})")
            ) from None
        finally:
            if previous is not None:
                current.jsonata = previous

    def _expression_error(self, err: jexception.JException) -> RuntimeErrorInfo:
        code = getattr(err, "error", None)
        message = str(err)
        # $eval reports any failure as D3120/D3121; say what it was when the runtime refused it
        cause = err.__context__
        while cause is not None:
            if isinstance(cause, RegexUnsupported):
                return RuntimeErrorInfo(category="ExpressionError", code=REGEX_UNSUPPORTED_CODE, message=f"{cause} (in $eval, in {_shown(self.source)})")
            if isinstance(cause, ExpressionRefused):
                return RuntimeErrorInfo(category="ExpressionError", code=cause.code, message=f"{cause} (in $eval, in {_shown(self.source)})")
            cause = cause.__context__
        return RuntimeErrorInfo(category="ExpressionError", code=code, message=f"{message} (in {_shown(self.source)})")


class ExpressionEngine:
    """Compiles and caches expressions; evaluation is bounded per call.

    Attributes:
        max_steps: Evaluation steps of one evaluation.
        max_depth: Nesting depth of one evaluation.
        max_size: Size units (characters and items) one evaluation may build or process.
        timeout_ms: Wall-clock backstop of one evaluation (fails the workflow task).
    """

    def __init__(
        self,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_size: int = DEFAULT_MAX_SIZE,
        cache_size: int = 4096,
    ) -> None:
        """Configure the bounds and the cache.

        Args:
            max_depth: Deterministic nesting budget of one evaluation.
            timeout_ms: Wall-clock backstop of one evaluation (fails the workflow task).
            max_steps: Deterministic budget of evaluation steps.
            max_size: Deterministic budget of size units.
            cache_size: How many compiled expressions to keep.
        """
        self.max_depth = max_depth
        self.timeout_ms = timeout_ms
        self.max_steps = max_steps
        self.max_size = max_size
        self._cache: OrderedDict[str, CompiledExpression] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def compile(self, source: str) -> CompiledExpression:
        """Return the compiled form of ``source``, from the cache when possible.

        Raises:
            ExpressionParseError: The text does not parse (or uses a regex RE2 cannot run).
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
        """Evaluate ``source`` against ``context`` within this engine's budgets.

        A parse failure at run time (which publishing prevents) is an ``ExpressionError``.
        """
        try:
            compiled = self.compile(source)
        except ExpressionParseError as err:
            raise RunError(RuntimeErrorInfo(category="ExpressionError", code=err.code, message=str(err))) from None
        return compiled.evaluate(
            context, max_depth=self.max_depth, timeout_ms=self.timeout_ms, max_steps=self.max_steps, max_size=self.max_size
        )


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
