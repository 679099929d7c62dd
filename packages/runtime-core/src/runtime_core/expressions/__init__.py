"""JSONata expressions, bounded and deterministic inside workflow code."""

from runtime_core.expressions._bounds import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE, DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_MS
from runtime_core.expressions._engine import (
    BUDGET_CODE,
    REGEX_UNSUPPORTED_CODE,
    CompiledExpression,
    ExpressionBudgetExceeded,
    ExpressionClock,
    ExpressionEngine,
    ExpressionParseError,
    ExpressionRegexUnsupported,
    format_instant,
    thread_engine,
    use_clock,
)
from runtime_core.expressions._regex import RegexUnsupported, compile_re2

__all__ = [
    "BUDGET_CODE",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_TIMEOUT_MS",
    "REGEX_UNSUPPORTED_CODE",
    "CompiledExpression",
    "ExpressionBudgetExceeded",
    "ExpressionClock",
    "ExpressionEngine",
    "ExpressionParseError",
    "ExpressionRegexUnsupported",
    "RegexUnsupported",
    "compile_re2",
    "format_instant",
    "thread_engine",
    "use_clock",
]
