"""The fast expression path (``runtime_core.expressions._fast``) against jsonata-python, its reference.

* Unit cases per supported shape: the fast closure compiles, runs without falling back, and gives
  exactly what jsonata-python gives (types included: ``1`` is not ``1.0`` is not ``True``).
* A differential test: at least 10,000 generated (expression, input) pairs from a grammar of the
  supported shapes plus unsupported ones (mixed types, nulls, missing fields, nested arrays,
  strings that look like numbers, index predicates, wildcards...), each evaluated through
  :meth:`CompiledExpression.evaluate` (fast path first) and :meth:`CompiledExpression.evaluate_slow`
  (jsonata-python only): the same result, or the same error category and code.
* The JSONata suite: every case whose expression the fast compiler accepts ends the same way
  through the fast path as through jsonata-python.
* Bounds: a fast evaluation never succeeds where jsonata-python would exceed a budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime_core.errors import RunError
from runtime_core.expressions import BUDGET_CODE, CompiledExpression, ExpressionParseError
from runtime_core.expressions._bounds import DEFAULT_MAX_SIZE, DEFAULT_MAX_STEPS
from runtime_core.expressions._fast import Fallback, compile_fast

SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "jsonata-test-suite"


# ------------------------------------------------------------------------------ helpers


def strict(value: Any) -> Any:
    """A comparable form that tells bool, int and float apart (and keeps key order)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    if isinstance(value, list):
        flags = tuple(getattr(value, flag, None) for flag in ("sequence", "cons", "keep_singleton", "outer_wrapper", "tuple_stream"))
        return ("list", type(value).__name__, flags, [strict(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(key, strict(item)) for key, item in value.items()])
    return ("other", repr(value))


def outcome(compiled: CompiledExpression, context: Any, *, slow: bool, **kwargs: Any) -> tuple[Any, ...]:
    """``("value", strict result)`` or ``("error", category, code, bound)``."""
    run = compiled.evaluate_slow if slow else compiled.evaluate
    try:
        result = run(context, **kwargs)
    except RunError as err:
        return ("error", err.info.category, err.info.code, (err.info.details or {}).get("bound"))
    return ("value", strict(result))


def fast_ran(compiled: CompiledExpression, context: Any, **kwargs: Any) -> bool:
    """Whether the fast closure itself produced a result (no fallback) for this input."""
    fast = compiled._fast
    if fast is None:
        return False
    try:
        fast.run(context, kwargs.get("bindings"), DEFAULT_MAX_STEPS, DEFAULT_MAX_SIZE)
    except Exception:
        return False
    return True


CTX: dict[str, Any] = {
    "payload": {
        "amount": 150,
        "ratio": 2.5,
        "whole": 4.0,
        "name": "Ada",
        "flag": True,
        "none": None,
        "empty": [],
        "text": "12.5",
        "items": [{"price": 5, "qty": 2, "tag": "a"}, {"price": 20, "qty": 1, "tag": "b"}, {"price": 12.5, "tag": None}],
        "nested": [[{"v": 1}, {"v": 2}], [{"v": 3}]],
        "single": [{"price": 7}],
        "customer": {"address": {"city": "Paris"}, "tier": "gold"},
        "numbers": [3, 1, 2],
    },
    "vars": {"limit": 10, "names": ["x", "y"]},
    "run": {"id": "r1"},
}


# ------------------------------------------------------------------------------ unit cases

FAST_CASES = [
    # paths
    "payload.amount",
    "payload.customer.address.city",
    "payload.missing",
    "payload.missing.deeper",
    "payload.none",
    "payload.none.x",
    "payload.name.x",
    "payload.items",
    "payload.items.price",
    "payload.items.tag",
    "payload.single.price",
    "payload.single",
    "payload.empty",
    "payload.empty.x",
    "payload.nested.v",
    "payload.nested",
    "payload.numbers",
    "$.payload.amount",
    "$$.payload.customer.tier",
    "$unbound",
    "($x := 1; payload.amount)",
    # comparisons and equality
    "payload.amount > 100",
    "payload.amount >= 150",
    "payload.ratio < 3",
    "payload.whole <= 4",
    "payload.name > 'Ab'",
    "payload.missing > 1",
    "payload.amount = 150",
    "payload.whole = 4",
    "payload.flag = true",
    "payload.none = null",
    "payload.missing = null",
    "payload.name != 'Ada'",
    "payload.items = payload.items",
    "payload.customer = {'address': {'city': 'Paris'}, 'tier': 'gold'}",
    "'x' in vars.names",
    "'z' in vars.names",
    "payload.amount in [1, 150]",
    # boolean logic
    "payload.amount > 100 and payload.flag",
    "payload.missing or payload.name",
    "payload.empty or 0",
    "payload.items and ''",
    "payload.customer and payload.numbers",
    # arithmetic
    "payload.amount + 1",
    "payload.amount * payload.ratio",
    "payload.amount / 4",
    "payload.amount % 7",
    "payload.whole - 1",
    "-payload.amount",
    "-payload.missing",
    "payload.missing + 1",
    "payload.amount / 3",
    # strings
    "payload.name & '!'",
    "payload.amount & ''",
    "payload.ratio & '/' & payload.whole",
    "payload.flag & payload.none",
    "payload.missing & 'x'",
    "payload.customer & ''",
    "payload.items.price & ''",
    # conditionals
    "payload.amount > 100 ? 'big' : 'small'",
    "payload.missing ? 1 : 2",
    "payload.missing ? 1",
    "payload.missing ?? 'default'",
    "payload.none ?? 'default'",
    "payload.name ?: 'none'",
    # constructors
    "[payload.amount, payload.name]",
    "[payload.items.price]",
    "[[1, 2], payload.numbers, payload.missing]",
    "[]",
    "{'a': payload.amount, 'b': payload.missing, 'c': [1]}",
    "{payload.name: 1}",
    "{}",
    "payload.items.{'p': price}",
    # functions
    "$sum(payload.items.price)",
    "$sum(payload.numbers)",
    "$sum(payload.amount)",
    "$sum(payload.missing)",
    "$sum(payload.empty)",
    "$count(payload.items)",
    "$count(payload.missing)",
    "$count(payload.name)",
    "$max(payload.items.price)",
    "$min(payload.numbers)",
    "$average(payload.numbers)",
    "$average(payload.empty)",
    "$string(payload.amount)",
    "$string(payload.ratio)",
    "$string(payload.customer)",
    "$string(payload.items)",
    "$string(1/3)",
    "$string(1e21)",
    "$number(payload.text)",
    "$number('0x1F')",
    "$number(payload.flag)",
    "$exists(payload.missing)",
    "$exists(payload.none)",
    "$exists(payload.amount)",
    "$lowercase(payload.name)",
    "$uppercase('straße')",
    "$lowercase('İ')",
    # filters
    "payload.items[price > 10]",
    "payload.items[price > 10].tag",
    "payload.items[price > 100]",
    "payload.items[tag = 'a'].price",
    "payload.items[qty > 1]",
    "$average([1, 3])",
    "$sum([9007199254740993, 0])",
    "payload.items[tag]",
    "payload.items[price > 1][qty > 1]",
    "$sum(payload.items[price > 6].price)",
    "$count(payload.items[tag != 'a'])",
    "payload.nested[v > 1]",
    "payload.customer[tier = 'gold'].address.city",
    "payload.items.price[$ > 10]",
    "payload.items[price > vars.limit]",
    "payload.items[$$.payload.amount > 100]",
    "payload.items.(price * 2)",
]


@pytest.mark.parametrize("source", FAST_CASES)
def test_shape_runs_fast_and_matches(source: str) -> None:
    """Each shape compiles to a fast closure (except the bind), and matches jsonata-python exactly."""
    compiled = CompiledExpression(source)
    if ":=" not in source:
        assert compiled.fast, source
    slow = outcome(compiled, CTX, slow=True)
    assert outcome(compiled, CTX, slow=False) == slow
    if compiled.fast and slow[0] == "value":
        assert fast_ran(compiled, CTX), f"{source} fell back"


ERROR_CASES = [
    "payload.name + 1",
    "1 - payload.name",
    "payload.name > 1",
    "payload.customer < 1",
    "payload.flag > true",
    "payload.amount / 0",
    "$sum(payload.items.tag)",
    "$sum(payload.name)",
    "$number('abc')",
    "$lowercase(payload.amount)",
    "-payload.name",
    "{payload.amount: 1}",
    "{'a': 1, 'a': 2}",
]


@pytest.mark.parametrize("source", ERROR_CASES)
def test_errors_are_jsonata_python_errors(source: str) -> None:
    """An error is raised by jsonata-python after the fast path gives up: same category and code."""
    compiled = CompiledExpression(source)
    slow = outcome(compiled, CTX, slow=True)
    assert slow[0] == "error"
    assert outcome(compiled, CTX, slow=False) == slow
    assert not fast_ran(compiled, CTX)


UNSUPPORTED = [
    "payload.items[0]",
    "payload.items[-1].price",
    "payload.items[]",
    "payload.*",
    "payload.**.price",
    "payload.items^(price)",
    "payload.items#$i",
    "payload.items@$i",
    "$map(payload.numbers, function($v){ $v * 2 })",
    "$join(vars.names, ',')",
    "$string()",
    "[1..3]",
    "payload.items{tag: price}",
    "payload ~> $keys()",
    "$x := 5",
    "payload.%",
    "/ab/",
]


@pytest.mark.parametrize("source", UNSUPPORTED)
def test_unsupported_shapes_stay_on_jsonata_python(source: str) -> None:
    """Shapes outside the list are not compiled (and still evaluate through jsonata-python)."""
    try:
        compiled = CompiledExpression(source)
    except ExpressionParseError:
        return
    assert not compiled.fast, source
    assert outcome(compiled, CTX, slow=False) == outcome(compiled, CTX, slow=True)


def test_index_predicate_results_fall_back() -> None:
    """A predicate that evaluates to a number selects by index: jsonata-python does it."""
    for source in ("payload.items[$$.vars.limit - 10]", "payload.items[qty]", "payload.numbers[[0, 1]]"):
        compiled = CompiledExpression(source)
        assert compiled.fast
        assert not fast_ran(compiled, CTX)
        assert outcome(compiled, CTX, slow=False) == outcome(compiled, CTX, slow=True)
    assert CompiledExpression("payload.items[$$.vars.limit - 10]").evaluate(CTX) == {"price": 5, "qty": 2, "tag": "a"}


def test_bindings_and_rebound_functions() -> None:
    """Bound variables are read; a binding that shadows a built-in function falls back."""
    compiled = CompiledExpression("$limit + payload.amount")
    assert compiled.evaluate(CTX, bindings={"limit": 5}) == 155
    assert fast_ran(compiled, CTX, bindings={"limit": 5})
    shadowed = CompiledExpression("$sum(payload.numbers)")
    assert outcome(shadowed, CTX, slow=False, bindings={"sum": 1}) == outcome(shadowed, CTX, slow=True, bindings={"sum": 1})
    assert not fast_ran(shadowed, CTX, bindings={"sum": 1})


def test_non_dict_context_falls_back() -> None:
    """Only an object context runs fast (jsonata-python wraps an array context specially)."""
    compiled = CompiledExpression("$sum(price)")
    data = [{"price": 1}, {"price": 2}]
    assert compiled.evaluate(data) == compiled.evaluate_slow(data) == 3  # type: ignore[arg-type]


def test_earlier_results_in_the_context() -> None:
    """Results of earlier evaluations (jsonata-python's list classes, flagged) fed back as context."""
    kept = {
        source: CompiledExpression(source).evaluate(CTX)
        for source in ("payload.items.price", "[1, 2]", "[[1], [2]]", "payload.nested.v", "[payload.items]", "payload.items[price > 1]", "payload.items.{'p': price}")
    }
    context = {"payload": CTX["payload"], "vars": {"kept": kept, "list": list(kept.values())}}
    for source in (
        "vars.kept", "vars.list", "vars.list.p", "vars.kept.*", "$count(vars.list)", "vars.list[$count($) > 1]",
        "vars.kept.`payload.items.price`", "$sum(vars.kept.`payload.items.price`)", "[vars.list, vars.list]",
        "vars.list.price", "vars.kept.`[[1], [2]]`", "vars.kept.`[[1], [2]]`[0]", "$string(vars.list)",
    ):
        compiled = CompiledExpression(source)
        copy = {"payload": CTX["payload"], "vars": {"kept": dict(kept), "list": list(kept.values())}}
        assert outcome(compiled, context, slow=False) == outcome(compiled, copy, slow=True), source


def test_compile_fast_rejects_deep_expressions() -> None:
    """Expressions nested deeper than the fast depth limit stay on jsonata-python."""
    deep = "(" * 60 + "1" + ")" * 60
    assert not CompiledExpression(deep).fast
    assert compile_fast(CompiledExpression("1 + 1")._ast.ast) is not None


# ------------------------------------------------------------------------------ bounds


def test_step_budget_is_kept() -> None:
    """Over the step budget: the fast path gives up and jsonata-python raises the budget error."""
    data = {"payload": {"items": [{"price": i} for i in range(500)]}}
    compiled = CompiledExpression("$sum(payload.items[price > 10].price)")
    for steps in (50, 500, 1_000, 2_000):
        slow = outcome(compiled, data, slow=True, max_steps=steps)
        assert outcome(compiled, data, slow=False, max_steps=steps) == slow
    assert outcome(compiled, data, slow=True, max_steps=500)[2] == BUDGET_CODE


def test_size_budget_is_kept() -> None:
    """Over the size budget (a long string built by &, a big result): the same budget error."""
    data = {"payload": {"text": "x" * 5_000, "items": list(range(3_000))}}
    sources = ("payload.text & payload.text", "[payload.items, payload.items]", "$string(payload.items)", "$count(payload.items)", "payload.items", "payload.items & ''", "$sum(payload.items)")
    for source in sources:
        compiled = CompiledExpression(source)
        assert compiled.fast
        for size in (1_000, 2_999, 3_001, 8_000, 12_000, 20_000, 1_000_000):
            slow = outcome(compiled, data, slow=True, max_size=size)
            assert outcome(compiled, data, slow=False, max_size=size) == slow, (source, size)


BOUND_SOURCES = [
    "$sum(payload.items.price)",
    "payload.items[price > 10].price",
    "$count(payload.items[tag = 'a'])",
    "payload.items.(price * 2)",
    "payload.items.{'p': price, 't': tag & '!'}",
    "[payload.items.price, payload.items.tag]",
    "$string(payload.items)",
    "payload.items[price > $average($$.payload.items.price)]",
]


@pytest.mark.parametrize("source", BOUND_SOURCES)
def test_budget_grid(source: str) -> None:
    """Over a grid of step and size budgets and input sizes, evaluate ends exactly as jsonata-python."""
    compiled = CompiledExpression(source)
    assert compiled.fast
    for n in (3, 40, 400):
        data = {"payload": {"items": [{"price": i, "tag": "a" if i % 2 else "bb"} for i in range(n)]}}
        for steps in (20, 100, 400, 2_000, 10_000, 100_000):
            for size in (50, 300, 2_000, 20_000, 1_000_000):
                slow = outcome(compiled, data, slow=True, max_steps=steps, max_size=size)
                assert outcome(compiled, data, slow=False, max_steps=steps, max_size=size) == slow, (n, steps, size)


def test_fast_work_limit_falls_back_before_the_budget() -> None:
    """The fast path's own item limit is below what jsonata-python would charge."""
    data = {"payload": {"items": [{"price": i} for i in range(20_000)]}}
    compiled = CompiledExpression("$sum(payload.items.price)")
    assert not fast_ran(compiled, data)
    assert outcome(compiled, data, slow=False) == outcome(compiled, data, slow=True)


def test_depth_budget_is_kept() -> None:
    """A depth budget below twice the expression's depth sends it to jsonata-python."""
    compiled = CompiledExpression("((((payload.amount + 1) + 1) + 1) + 1)")
    for depth in (2, 5, 8, 50):
        assert outcome(compiled, CTX, slow=False, max_depth=depth) == outcome(compiled, CTX, slow=True, max_depth=depth)


def test_fallback_signal_is_an_exception() -> None:
    """The engine catches Exception: the fast path's signal must be one."""
    assert issubclass(Fallback, Exception)


# ------------------------------------------------------------------------------ differential

NAMES = ["a", "b", "price", "name", "items", "tags", "n", "v"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=300),
    st.sampled_from([0, 1, 2**53 + 1, -1, 10**20]),
    st.sampled_from([0.0, 1.5, -2.25, 4.0, 1e-7, 1e21, 0.1, 100.0]),
    st.sampled_from(["", "a", "B", "12", "1e3", "0x1F", "x y", "ß", "İ", "abc", "10", "True"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.sampled_from(NAMES), children, max_size=4)),
    max_leaves=12,
)
contexts = st.fixed_dictionaries(
    {
        "payload": st.one_of(
            st.dictionaries(st.sampled_from(NAMES), json_values, max_size=6),
            st.fixed_dictionaries({"items": st.lists(st.dictionaries(st.sampled_from(NAMES), scalars, max_size=4), max_size=6)}),
            json_values,
        ),
        "vars": st.dictionaries(st.sampled_from(NAMES), json_values, max_size=3),
    }
)

names = st.sampled_from(NAMES)
paths = st.one_of(
    st.builds(lambda root, rest: ".".join([root, *rest]), st.sampled_from(["payload", "vars", "$.payload", "$$.vars"]), st.lists(names, max_size=3)),
    st.builds(lambda rest: ".".join(rest), st.lists(names, min_size=1, max_size=2)),
    st.sampled_from(["$", "$$", "$unbound", "$sum", "payload.items.price", "payload.items[0]", "payload.*", "payload.items[]"]),
)
literals = st.one_of(
    st.integers(min_value=-3, max_value=200).map(str),
    st.sampled_from(["1.5", "0", "100", "1e3", "'a'", "''", "'12'", "'B'", "true", "false", "null"]),
)
FUNCTIONS = ["sum", "count", "max", "min", "average", "string", "number", "exists", "lowercase", "uppercase"]
OPERATORS = ["+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "and", "or", "&", "in"]


def _composites(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    wrap = st.booleans()
    return st.one_of(
        st.builds(lambda a, op, b, w: f"({a} {op} {b})" if w else f"{a} {op} {b}", children, st.sampled_from(OPERATORS), children, wrap),
        st.builds(lambda a: f"-{a}", children),
        st.builds(lambda c, a, b: f"({c} ? {a} : {b})", children, children, children),
        st.builds(lambda c, a: f"({c} ? {a})", children, children),
        st.builds(lambda a, b: f"({a} ?? {b})", children, children),
        st.builds(lambda a, b: f"[{a}, {b}]", children, children),
        st.builds(lambda a, b: f"[[{a}], {b}]", children, children),
        st.builds(lambda k, a, b: f"{{'{k}': {a}, 'z': {b}}}", names, children, children),
        st.builds(lambda k, a: f"{{{k}: {a}}}", children, children),
        st.builds(lambda f, a: f"${f}({a})", st.sampled_from([*FUNCTIONS, *FUNCTIONS, "length", "keys", "not"]), children),
        st.builds(lambda p, q: f"{p}[{q}]", paths, children),
        st.builds(lambda p, q: f"{p}.({q})", paths, children),
        st.builds(lambda a, b: f"({a}; {b})", children, children),
    )


expressions = st.recursive(st.one_of(paths, literals), _composites, max_leaves=6)

_COMPILED: dict[str, CompiledExpression | None] = {}
_STATS = {"pairs": 0, "fast": 0, "errors": 0, "fast_compiled": 0}
INPUTS_PER_EXPRESSION = 4


def _compiled(source: str) -> CompiledExpression | None:
    if source not in _COMPILED:
        try:
            _COMPILED[source] = CompiledExpression(source)
        except ExpressionParseError:
            _COMPILED[source] = None
    return _COMPILED[source]


@settings(max_examples=2_600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(source=expressions, inputs=st.lists(contexts, min_size=INPUTS_PER_EXPRESSION, max_size=INPUTS_PER_EXPRESSION))
def _differential(source: str, inputs: list[dict[str, Any]]) -> None:
    compiled = _compiled(source)
    if compiled is None:
        return
    for context in inputs:
        # the fast path must not change its input: compare against a copy evaluated slowly
        copy = json.loads(json.dumps(context))
        slow = outcome(compiled, copy, slow=True)
        fast = outcome(compiled, context, slow=False)
        assert fast == slow, (source, context)
        assert context == copy
        _STATS["pairs"] += 1
        _STATS["errors"] += slow[0] == "error"
        if compiled.fast:
            _STATS["fast_compiled"] += 1
            _STATS["fast"] += fast_ran(compiled, context)


def test_differential_fast_equals_jsonata_python() -> None:
    """At least 10,000 generated (expression, input) pairs: fast path == jsonata-python."""
    _differential()
    assert _STATS["pairs"] >= 10_000, _STATS
    # the grammar must exercise the fast path (and errors), not only fallbacks
    assert _STATS["fast"] >= 3_000, _STATS
    assert _STATS["errors"] >= 500, _STATS


# ---------------------------------------------------------------- differential: authored shapes

FIELDS = ["price", "qty", "tag", "missing"]
field_values = st.one_of(
    st.integers(min_value=-2, max_value=50),
    st.sampled_from([0.5, 12.5, 3.0, None, True, False, "a", "B", "", "12", [1, 2], [], {"x": 1}]),
)
items = st.lists(st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=4), max_size=8)
authored_contexts = st.fixed_dictionaries(
    {
        "payload": st.fixed_dictionaries(
            {"items": st.one_of(items, items, st.just([]), field_values)},
            optional={"amount": field_values, "name": field_values, "tags": st.lists(field_values, max_size=4)},
        ),
        "vars": st.fixed_dictionaries({}, optional={"limit": field_values}),
    }
)
field = st.sampled_from(FIELDS)
small_literals = st.sampled_from(["0", "1", "10", "2.5", "'a'", "'B'", "''", "true", "null", "$$.vars.limit"])
comparisons = st.builds(lambda f, op, lit: f"{f} {op} {lit}", field, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), small_literals)
predicates = st.recursive(
    st.one_of(
        comparisons,
        field,
        field.map(lambda f: f"$exists({f})"),
        field.map(lambda f: f"{f} in ['a', 'B', 1]"),
        field.map(lambda f: f"$lowercase({f}) = 'b'"),
        field.map(lambda f: f"$number({f}) > 1"),
    ),
    lambda children: st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", children, st.sampled_from(["and", "or"]), children),
        st.builds(lambda a, b: f"{a} and {b}", children, children),
    ),
    max_leaves=4,
)
selections = st.one_of(
    st.just("payload.items"),
    predicates.map(lambda p: f"payload.items[{p}]"),
    st.builds(lambda p, q: f"payload.items[{p}][{q}]", predicates, predicates),
)
values = st.one_of(
    st.builds(lambda sel, f: f"{sel}.{f}", selections, field),
    selections,
    st.builds(lambda sel, a, b: f"{sel}.({a} * {b})", selections, field, field),
    st.sampled_from(["payload.amount", "payload.name", "payload.tags", "payload.tags[$ != 'a']", "vars.limit"]),
)
aggregates = st.builds(lambda f, v: f"${f}({v})", st.sampled_from(FUNCTIONS), values)
authored = st.one_of(
    values,
    aggregates,
    st.builds(lambda a, op, lit: f"{a} {op} {lit}", st.one_of(aggregates, values), st.sampled_from(["+", "*", ">", "=", "&", "-", "/"]), small_literals),
    st.builds(lambda c, a, b: f"{c} ? {a} : {b}", st.builds(lambda a, lit: f"{a} > {lit}", aggregates, small_literals), values, small_literals),
    st.builds(lambda a, b: f"{{'total': {a}, 'list': [{b}]}}", aggregates, values),
    st.builds(lambda a, b: f"{a} & ' / ' & {b}", aggregates, values),
)

_AUTHORED_STATS = {"pairs": 0, "fast": 0}


@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(source=authored, inputs=st.lists(authored_contexts, min_size=3, max_size=3))
def _authored_differential(source: str, inputs: list[dict[str, Any]]) -> None:
    compiled = _compiled(source)
    assert compiled is not None and compiled.fast, source
    for context in inputs:
        copy = json.loads(json.dumps(context))
        slow = outcome(compiled, copy, slow=True)
        assert outcome(compiled, context, slow=False) == slow, (source, context)
        assert context == copy
        _AUTHORED_STATS["pairs"] += 1
        _AUTHORED_STATS["fast"] += fast_ran(compiled, context)


def test_differential_authored_shapes() -> None:
    """Shapes authored workflows use (filters, aggregates over item fields of mixed types): fast == slow."""
    _authored_differential()
    assert _AUTHORED_STATS["pairs"] >= 6_000 and _AUTHORED_STATS["fast"] >= 2_000, _AUTHORED_STATS


# ------------------------------------------------------------------------------ the JSONata suite


def _suite_cases() -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for path in sorted((SUITE / "groups").glob("*/*.json")):
        data = json.loads(path.read_text())
        for index, case in enumerate(data if isinstance(data, list) else [data]):
            source = case.get("expr")
            if source is None:
                source = (path.parent / case["expr-file"]).read_text()
            out.append((f"{path.parent.name}/{path.name}#{index}", case, source))
    return out


def test_suite_cases_the_fast_path_accepts() -> None:
    """Every suite case whose expression compiles fast ends through the fast path exactly as
    through jsonata-python (whose results, not the suite's, are the reference: see
    tests/test_jsonata_suite.py)."""
    if not (SUITE / "groups").is_dir():
        pytest.skip("../shared/jsonata-test-suite is not present")
    datasets = {p.stem: json.loads(p.read_text()) for p in (SUITE / "datasets").glob("*.json")}
    accepted = ran = 0
    mismatches = []
    for case_id, case, source in _suite_cases():
        try:
            compiled = CompiledExpression(source)
        except ExpressionParseError:
            continue
        if not compiled.fast:
            continue
        accepted += 1
        data = case["data"] if "data" in case else (datasets[case["dataset"]] if case.get("dataset") else None)
        kwargs = {"max_depth": case.get("depth", 500), "timeout_ms": 30_000, "bindings": case.get("bindings") or None}
        slow = outcome(compiled, json.loads(json.dumps(data)), slow=True, **kwargs)
        fast = outcome(compiled, data, slow=False, **kwargs)
        if fast != slow:
            mismatches.append(f"{case_id} {source!r}: fast {fast} != slow {slow}")
            continue
        if isinstance(data, dict) and fast_ran(compiled, data, bindings=kwargs["bindings"]):
            ran += 1
    assert not mismatches, "\n".join(mismatches)
    # 1,686 cases: 428 compile fast, 263 of them run on the fast path (the rest have an array or
    # scalar as input, or hit a fallback)
    assert accepted >= 400 and ran >= 250, (accepted, ran)
