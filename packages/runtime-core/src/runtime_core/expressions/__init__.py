"""JSONata expressions, bounded and deterministic inside workflow code."""

from runtime_core.expressions._engine import (
    CompiledExpression,
    ExpressionBudgetExceeded,
    ExpressionClock,
    ExpressionEngine,
    ExpressionParseError,
    format_instant,
    thread_engine,
    use_clock,
)

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
