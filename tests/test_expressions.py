"""The expression engine: results, errors, budgets and the deterministic clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from runtime_core.errors import RunError
from runtime_core.expressions import ExpressionClock, ExpressionEngine, use_clock

ENGINE = ExpressionEngine(max_depth=50)


def test_evaluates_against_context() -> None:
    """Paths, concatenation, aggregation and missing paths."""
    ctx = {"payload": {"name": "ada", "items": [1, 2, 3]}, "vars": {}}
    assert ENGINE.evaluate("payload.name & '!'", ctx) == "ada!"
    assert ENGINE.evaluate("$sum(payload.items)", ctx) == 6
    assert ENGINE.evaluate("payload.nothing", ctx) is None


def test_parse_error_has_position() -> None:
    """A parse failure names its position."""
    problem = ENGINE.parse_problem("payload.amount >")
    assert problem is not None and problem.position == 16 and "position 16" in str(problem)


def test_runtime_error_is_expression_error() -> None:
    """A failing function call is a catchable ExpressionError naming the expression."""
    with pytest.raises(RunError) as caught:
        ENGINE.evaluate("$number('x')", {})
    assert caught.value.info.category == "ExpressionError"
    assert "$number('x')" in caught.value.info.message


def test_depth_budget_is_rearmed_each_evaluation() -> None:
    """Runaway recursion is an ExpressionError every time, and a later evaluation still works."""
    runaway = "($f := function($n){ 1 + $f($n + 1) }; $f(0))"
    for _ in range(2):
        with pytest.raises(RunError) as caught:
            ENGINE.evaluate(runaway, {})
        assert caught.value.info.category == "ExpressionError"
    assert ENGINE.evaluate("1 + 1", {}) == 2


def test_clock_and_random_are_injected() -> None:
    """$now(), $millis() and $random() read the installed clock (workflow time in the interpreter)."""
    fixed = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    clock = ExpressionClock(now=lambda: fixed, random=random.Random(7).random)
    expected_random = random.Random(7).random()
    with use_clock(clock):
        assert ENGINE.evaluate("$now()", {}) == "2030-01-02T03:04:05.678Z"
        assert ENGINE.evaluate("$millis()", {}) == int(fixed.timestamp() * 1000)
        assert ENGINE.evaluate("$random()", {}) == expected_random


def test_compiled_expressions_are_cached() -> None:
    """Compiling the same text twice returns the same compiled object."""
    assert ENGINE.compile("payload.a") is ENGINE.compile("payload.a")


def test_evaluation_never_walks_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """jsonata-python's per-call input validation (cost proportional to the context) is off."""
    from jsonata import functions

    def walk(_arg: object) -> None:
        raise AssertionError("input validation walked the context")

    monkeypatch.setattr(functions.Functions, "validate_input", staticmethod(walk))
    big = {"payload": {"items": list(range(10_000)), "amount": 150}}
    assert ExpressionEngine().evaluate("payload.amount > 100", big) is True
