"""Hostile expressions end as catchable ExpressionErrors within deterministic bounds.

Each expression here once published fine and then either failed the workflow task on Temporal's
deadlock detector forever (the run stuck RUNNING, the worker at 1.3-2 GB) or froze the whole
worker (a catastrophic regex holds the GIL). Now each ends quickly, the same way every time,
as an ``ExpressionError`` that ``onError``/``control.tryCatch`` can handle.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

from runtime_core.errors import RunError
from runtime_core.expressions import (
    BUDGET_CODE,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_SIZE,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_MS,
    REGEX_UNSUPPORTED_CODE,
    CompiledExpression,
    ExpressionBudgetExceeded,
    ExpressionClock,
    ExpressionEngine,
    ExpressionRegexUnsupported,
    use_clock,
)

CATASTROPHIC = "/(a+)+$/"
EVIL_INPUT = "a" * 30 + "!"

#: (expression, the bound it exceeds)
HOSTILE = [
    ("($n := 10000000; [1..$n])", "size"),
    ("[1..1e4].([1..1e4])", "size"),
    ("($f := function($n){$f($n+1)}; $f(0))", "steps"),  # tail call: the depth never grows
    ("($f := function($n){ 1 + $f($n+1) }; $f(0))", "depth"),  # infinite non-tail recursion
    ('$pad("", 3000000)', "size"),
    ('($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f("a", 30))', "size"),  # doubled string
    ("($f := function($a, $n){ $n = 0 ? $a : $f([$a, $a], $n - 1) }; $f([1], 30))", "size"),  # doubled array
    ('$eval($pad("", 100000, "1+") & "1")', "steps"),  # a big $eval
    ('$eval("($f := function($n){$f($n+1)}; $f(0))")', "steps"),  # not hidden by $eval's own error
    ('$fromMillis(0, "[Y,2000000000]")', "size"),  # a 2e9-digit year
    ("($a := [1..100]; $b := [[$a],[$a]]; $c := [[$b],[$b]]; $d := [[$c],[$c]]; $e := [[$d],[$d]];"
     " $f := [[$e],[$e]]; $g := [[$f],[$f]]; $h := [[$g],[$g]]; $i := [[$h],[$h]]; $j := [[$i],[$i]];"
     " $k := [[$j],[$j]]; $l := [[$k],[$k]]; $m := [[$l],[$l]]; $n := [[$m],[$m]]; $o := [[$n],[$n]]; $string($o))", "size"),
    ("($a := [1..100]; $b := [[$a],[$a]]; $c := [[$b],[$b]]; $d := [[$c],[$c]]; $e := [[$d],[$d]];"
     " $f := [[$e],[$e]]; $g := [[$f],[$f]]; $h := [[$g],[$g]]; $i := [[$h],[$h]]; $j := [[$i],[$i]];"
     " $k := [[$j],[$j]]; $l := [[$k],[$k]]; $m := [[$l],[$l]]; $n := [[$m],[$m]]; $o := [[$n],[$n]]; $o)", "size"),  # shared arrays in the result
    ("$sort([1..50000], function($a, $b){ $a < $b })", "steps"),
    ("[1..100000].**", "steps"),
    ("($s := $pad('', 500000, 'a'); [1..1000].($s < $s))", "steps"),
    ('$replace($pad("", 500000, "a"), "a", "bb")', "size"),
    ('$match($pad("", 900000, "a"), /a/)', "steps"),  # 3 steps a match
    ("$distinct([1..30000].{'a': $ % 3000})", "steps"),  # comparisons of objects
]


def _fails(engine: ExpressionEngine, source: str) -> tuple[RunError, float]:
    started = time.perf_counter()
    with pytest.raises(RunError) as caught:
        engine.evaluate(source, {"payload": {}})
    return caught.value, time.perf_counter() - started


@pytest.mark.parametrize(("source", "bound"), HOSTILE, ids=[f"{b}:{s[:40]}" for s, b in HOSTILE])
def test_hostile_expression_is_a_catchable_budget_error(source: str, bound: str) -> None:
    """Each hostile expression is an ExpressionError naming its bound, the limit and the expression,
    the same on every evaluation; a normal expression evaluated right after still works."""
    engine = ExpressionEngine()
    first, elapsed = _fails(engine, source)
    info = first.info
    assert info.catchable and info.category == "ExpressionError"
    assert info.code == BUDGET_CODE
    assert info.details == {"bound": bound, "limit": {"steps": DEFAULT_MAX_STEPS, "depth": DEFAULT_MAX_DEPTH, "size": DEFAULT_MAX_SIZE}[bound]}
    assert f"{info.details['limit']:,}" in info.message and source[:30] in info.message
    assert elapsed < DEFAULT_TIMEOUT_MS / 1000  # stopped by the budget, long before the backstop
    for _ in range(2):
        again, _elapsed = _fails(engine, source)
        assert again.info.to_dict() == info.to_dict()
    assert engine.evaluate("payload.x + 1", {"payload": {"x": 41}}) == 42


def test_budgets_are_deterministic_counts() -> None:
    """The same evaluation uses exactly the same steps and size every time (never time)."""
    counts = set()
    for _ in range(3):
        compiled = CompiledExpression("$sum([1..2000].($ * 2))")
        assert compiled.evaluate({}) == 4002000
        counts.add((compiled._ast.budget.steps, compiled._ast.budget.size))
    assert len(counts) == 1


def test_limits_are_settable_and_defaults_documented() -> None:
    """ExpressionEngine takes each bound; the defaults are the documented ones."""
    engine = ExpressionEngine()
    assert (engine.max_steps, engine.max_depth, engine.max_size, engine.timeout_ms) == (100_000, 500, 1_000_000, 1_500)
    small = ExpressionEngine(max_steps=50, max_size=1000, max_depth=10)
    assert _fails(small, "[1..100].($ + 1)")[0].info.details == {"bound": "steps", "limit": 50}
    assert _fails(small, "$pad('', 2000)")[0].info.details == {"bound": "size", "limit": 1000}
    assert _fails(small, "($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(20))")[0].info.details == {"bound": "depth", "limit": 10}
    assert small.evaluate("[1..10].($ + 1)", {}) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_everyday_expressions_stay_far_inside_the_budgets() -> None:
    """A filter, a sum and a mapping over 1,000 items use a small part of each budget."""
    items = [{"price": i, "qty": i % 3, "status": "open" if i % 2 else "done"} for i in range(1000)]
    compiled = CompiledExpression("$sum(payload.items[status = 'open'].(price * qty))")
    expected = sum(i["price"] * i["qty"] for i in items if i["status"] == "open")
    assert compiled.evaluate({"payload": {"items": items}}) == expected
    # the budget of jsonata-python's evaluation (the fast path, tried first, keeps no budget)
    assert compiled.evaluate_slow({"payload": {"items": items}}) == expected
    budget = compiled._ast.budget
    assert budget.steps < DEFAULT_MAX_STEPS / 10 and budget.size < DEFAULT_MAX_SIZE / 50 and budget.depth == 0


def test_worst_case_inside_the_budgets_is_bounded_in_time_and_memory() -> None:
    """Expressions that use up a budget finish well under the backstop with bounded memory."""
    engine = ExpressionEngine()
    for source in ("($f := function($n){$f($n+1)}; $f(0))", "$sort([1..50000], function($a, $b){ $a < $b })", "[1..490000].($)", "[1..330000].{'a': $}"):
        tracemalloc.start()
        started = time.perf_counter()
        with pytest.raises(RunError):
            engine.evaluate(source, {})
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < 1.5 and peak < 64 * 1024 * 1024, (source, elapsed, peak)


def test_wall_clock_backstop_fails_the_task_not_the_expression() -> None:
    """The backstop is not deterministic: it raises ExpressionBudgetExceeded (fails the workflow
    task), never a catchable ExpressionError, also inside $eval (which catches every Exception)."""
    engine = ExpressionEngine(timeout_ms=0)
    for source in ("[1..5000].($ + 1)", '$eval("[1..5000].($ + 1)")'):
        with pytest.raises(ExpressionBudgetExceeded):
            engine.evaluate(source, {})
    assert ExpressionEngine().evaluate("$count([1..5000].($ + 1))", {}) == 5000


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (f'$match("{EVIL_INPUT}", {CATASTROPHIC})', None),
        (f'$contains("{EVIL_INPUT}", {CATASTROPHIC})', False),
        (f'$replace("{EVIL_INPUT}", {CATASTROPHIC}, "x")', EVIL_INPUT),
        (f'$split("{EVIL_INPUT}", {CATASTROPHIC})', [EVIL_INPUT]),
        (f"$eval('$match(\"{EVIL_INPUT}\", {CATASTROPHIC})')", None),
        (f'$toMillis("{EVIL_INPUT}", "(a+)+$")', None),  # a picture's literal text becomes a regex
    ],
)
def test_catastrophic_regex_finishes_in_milliseconds(source: str, expected: object) -> None:
    """/(a+)+$/ against 30 a's and a '!' froze the worker for minutes with Python's re."""
    engine = ExpressionEngine()
    started = time.perf_counter()
    assert engine.evaluate(source, {}) == expected
    assert time.perf_counter() - started < 0.1


def test_regex_semantics_kept() -> None:
    """Flags, groups, replacement templates and JavaScript's \\uXXXX work as before."""
    engine = ExpressionEngine()
    assert engine.evaluate('$match("Ab ab", /(a)(b)/i)', {}) == [
        {"match": "Ab", "index": 0, "groups": ["A", "b"]},
        {"match": "ab", "index": 3, "groups": ["a", "b"]},
    ]
    assert engine.evaluate('$replace("John Smith", /(\\w+)\\s(\\w+)/, "$2, $1")', {}) == "Smith, John"
    assert engine.evaluate('$replace("abc", /(b)/, "[$1$2]")', {}) == "a[b]c"  # a missing group is empty
    assert engine.evaluate('$contains("caf\u00e9", /caf\\u00e9/)', {}) is True
    assert engine.evaluate('$split("a1b2c", /\\d/)', {}) == ["a", "b", "c"]
    assert engine.evaluate('$match("x\\ny", /^y/m)[0].index', {}) == 2


@pytest.mark.parametrize("regex", ["/(a)\\1/", "/a(?=b)/", "/(?<!x)a/"])
def test_regex_re2_cannot_run_is_refused(regex: str) -> None:
    """Backreferences and lookaround: refused when compiled (publish), catchable at run time."""
    source = f'$match("aab", {regex})'
    with pytest.raises(ExpressionRegexUnsupported) as refused:
        CompiledExpression(source)
    assert refused.value.code == REGEX_UNSUPPORTED_CODE and "RE2" in str(refused.value)
    engine = ExpressionEngine()
    error, _elapsed = _fails(engine, source)
    assert error.info.code == REGEX_UNSUPPORTED_CODE
    escaped = source.replace("\\", "\\\\").replace('"', '\\"')
    error, _elapsed = _fails(engine, f'$eval("{escaped}")')
    assert error.info.catchable and error.info.code == REGEX_UNSUPPORTED_CODE and "RE2" in error.info.message


def test_to_millis_picture_regex_re2_cannot_run() -> None:
    """A $toMillis picture's literal text becomes a regex: one RE2 cannot run is a catchable error."""
    error, _elapsed = _fails(ExpressionEngine(), r'$toMillis("abb", "(a)(b)\\2")')  # ^((a)(b)\2)$
    assert error.info.code == REGEX_UNSUPPORTED_CODE and "RE2" in error.info.message
    assert ExpressionEngine().evaluate('$toMillis("2018-02-01", "[Y]-[M]-[D]")', {}) == 1517443200000


def test_format_number_separator_cannot_inject_a_pattern() -> None:
    """jsonata-python pastes some $formatNumber options into a regex: they must be one character."""
    engine = ExpressionEngine()
    started = time.perf_counter()
    error, _elapsed = _fails(engine, '$formatNumber(1, "0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", {"exponent-separator": "(a+)+$"})')
    assert error.info.code == "EXPRESSION_INVALID_ARGUMENT" and "exponent-separator" in error.info.message
    assert time.perf_counter() - started < 0.1
    assert engine.evaluate('$formatNumber(1234.5, "#.###,0", {"decimal-separator": ",", "grouping-separator": "."})', {}) == "1.234,5"


def test_shuffle_uses_the_workflow_random() -> None:
    """$shuffle draws from the bound clock (workflow.random() in the interpreter): replays agree."""
    engine = ExpressionEngine()
    clock_a = ExpressionClock(now=lambda: datetime(2030, 1, 1, tzinfo=UTC), random=random.Random(3).random)
    clock_b = ExpressionClock(now=lambda: datetime(2030, 1, 1, tzinfo=UTC), random=random.Random(3).random)
    with use_clock(clock_a):
        first = engine.evaluate("$shuffle([1..20])", {})
    with use_clock(clock_b):
        second = engine.evaluate("$shuffle([1..20])", {})
    assert first == second and sorted(first) == list(range(1, 21)) and first != list(range(1, 21))


def test_linear_replacements_keep_results() -> None:
    """$distinct and $replace, reimplemented without quadratic work, return what they returned."""
    engine = ExpressionEngine()
    assert engine.evaluate('$distinct([1, "1", 1, {"a": 1}, {"a": 1}, [2], [2], "x", "x", true])', {}) == [1, "1", {"a": 1}, [2], "x"]
    assert engine.evaluate('$replace("a.b.c", ".", "$0$0")', {}) == "a..b..c"
    assert engine.evaluate('$replace("aaaa", "a", "b", 2)', {}) == "bbaa"
    assert engine.evaluate('$replace("aaaa", /a/, "b", 1000000000)', {}) == "bbbb"
    started = time.perf_counter()
    assert engine.evaluate('$length($replace($pad("", 200000, "ab"), "a", "c"))', {}) == 200000
    assert time.perf_counter() - started < 0.5


def test_function_and_regex_in_values() -> None:
    """A regex bound to a variable still works through the RE2 engine; JSON nulls come back as None."""
    engine = ExpressionEngine()
    assert engine.evaluate('($r := /b+/; $replace("abbbc", $r, "-"))', {}) == "a-c"
    assert engine.evaluate('{"a": null, "b": [null, 1]}', {}) == {"a": None, "b": [None, 1]}


# ----------------------------------------------------------------------------- publish checks


def _definition(steps: list[dict[str, object]], **extra: object) -> dict[str, object]:
    return {"id": "wf", "version": 1, "name": "wf", "steps": steps, **extra}


def _codes(definition: dict[str, object]) -> dict[str, list[str]]:
    from runtime_core.dsl import validate_definition

    _model, problems = validate_definition(definition)
    out: dict[str, list[str]] = {}
    for problem in problems:
        if problem.severity == "error":
            out.setdefault(problem.code, []).append(f"{problem.stepPath}: {problem.message}")
    return out


def test_publish_refuses_regex_re2_cannot_run() -> None:
    """A backreference or lookaround in a regex literal is refused at publish, naming step and field."""
    codes = _codes(_definition([{"id": "a", "type": "transform.assign", "config": {"assign": {"x": {"$expr": '$match(payload.s, /(a)\\1/)'}}}}]))
    assert list(codes) == ["EXPRESSION_REGEX_UNSUPPORTED"]
    (message,) = codes["EXPRESSION_REGEX_UNSUPPORTED"]
    assert message.startswith("root.steps[0]: config.assign.x: regex /(a)\\1/") and "RE2" in message and "backreferences" in message
    # an ordinary regex, and a publishable one inside $eval text (checked when it runs)
    assert _codes(_definition([{"id": "a", "type": "transform.assign", "config": {"assign": {"x": {"$expr": '$match(payload.s, /a+/i)'}}}}])) == {}


def test_publish_refuses_too_long_expressions() -> None:
    """Expressions compile inside workflow code the first time they run: their length is bounded."""
    source = "+".join(["1"] * 6000)
    codes = _codes(_definition([{"id": "a", "type": "transform.assign", "config": {"assign": {"x": {"$expr": source}}}}]))
    assert list(codes) == ["EXPRESSION_TOO_LONG"] and "11,999 characters" in codes["EXPRESSION_TOO_LONG"][0]


def test_publish_checks_payload_schema_regexes_and_refs() -> None:
    """payloadSchema: RE2-incompatible patterns and non-local or dangling $refs are refused with their path."""
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^(a)\\1$"},
            "remote": {"$ref": "https://example.com/schemas/thing.json"},
            "dangling": {"$ref": "#/$defs/missing"},
            "fine": {"$ref": "#/$defs/name"},
            "letters": {"type": "string", "pattern": "^\\p{L}+$"},
        },
        "patternProperties": {"^x-(?=y)": {"type": "string"}},
        "$defs": {"name": {"type": "string", "pattern": "^[a-z]+$"}},
    }
    codes = _codes(_definition([{"id": "a", "type": "state.set", "config": {"state": "x"}}], payloadSchema=schema))
    assert sorted(codes) == ["SCHEMA_REF_NOT_LOCAL", "SCHEMA_REF_UNRESOLVABLE", "SCHEMA_REGEX_UNSUPPORTED"]
    assert codes["SCHEMA_REF_NOT_LOCAL"] == ["root: payloadSchema.properties.remote.$ref: 'https://example.com/schemas/thing.json' is not a reference within this schema; only local references ('#/$defs/...') are supported: copy the referenced schema into $defs"]
    assert codes["SCHEMA_REF_UNRESOLVABLE"][0].startswith("root: payloadSchema.properties.dangling.$ref: '#/$defs/missing' does not resolve")
    assert sorted(m.split(":")[1].strip() for m in codes["SCHEMA_REGEX_UNSUPPORTED"]) == ["payloadSchema.patternProperties.^x-(?=y)", "payloadSchema.properties.code.pattern"]
    invalid = _codes(_definition([{"id": "a", "type": "state.set", "config": {"state": "x"}}], payloadSchema={"type": "strin"}))
    assert list(invalid) == ["INVALID_PAYLOAD_SCHEMA"]


def test_publish_checks_inline_form_schema() -> None:
    """A human.task's inline formSchema is validated at publish like payloadSchema."""
    def task(form_schema: object) -> dict[str, object]:
        return _definition([{"id": "t", "type": "human.task", "config": {"taskType": "approve", "title": {"$expr": "'ok?'"}, "formSchema": form_schema}}])

    assert _codes(task({"type": "object", "properties": {"ok": {"type": "boolean"}}})) == {}
    assert list(_codes(task({"type": 5}))) == ["INVALID_FORM_SCHEMA"]
    codes = _codes(task({"type": "object", "properties": {"ok": {"$ref": "other.json"}, "id": {"pattern": "(?<!x)y"}}}))
    assert sorted(codes) == ["SCHEMA_REF_NOT_LOCAL", "SCHEMA_REGEX_UNSUPPORTED"]
    assert codes["SCHEMA_REF_NOT_LOCAL"][0].startswith("root.steps[0]: config.formSchema.properties.ok.$ref: 'other.json'")


def test_catastrophic_schema_pattern_finishes_in_milliseconds() -> None:
    """pattern, patternProperties, additionalProperties and unevaluatedProperties use RE2 at launch and
    task completion; schema_problems never raises."""
    from runtime_core.dsl import schema_problems

    evil = "(a+)+$"
    schemas = [
        {"type": "string", "pattern": evil},
        {"type": "object", "patternProperties": {evil: {"type": "integer"}}},
        {"type": "object", "patternProperties": {evil: {}}, "additionalProperties": False},
        {"type": "object", "patternProperties": {evil: {}}, "unevaluatedProperties": False},
        {"type": "object", "propertyNames": {"pattern": evil}},
    ]
    instances = [EVIL_INPUT, {EVIL_INPUT: "x"}, {EVIL_INPUT: 1}, {EVIL_INPUT: 1}, {EVIL_INPUT: 1}]
    fails = [True, False, True, True, True]  # the key ends with "!": (a+)+$ does not match it
    for schema, instance, expected in zip(schemas, instances, fails, strict=True):
        started = time.perf_counter()
        problems = schema_problems(schema, instance, "payload")
        assert time.perf_counter() - started < 0.05, schema
        assert bool(problems) is expected, (schema, problems)
    assert schema_problems({"type": "string", "pattern": "^a+$"}, "aaa", "payload") == []
    # a remote $ref (refused at publish today, but stored before) is a problem, not an exception
    broken = schema_problems({"$ref": "https://example.com/x.json"}, {}, "payload")
    assert len(broken) == 1 and broken[0]["path"] == "payload" and "cannot be applied" in broken[0]["message"]


async def test_registering_a_task_schema_checks_it(tmp_path: object) -> None:
    """register_task_definition refuses what publish refuses for an inline formSchema."""
    from pathlib import Path

    from runtime_core.ingress import TaskError, register_task_definition
    from runtime_core.persistence import Database, upgrade

    assert isinstance(tmp_path, Path)
    database = Database(f"sqlite:///{tmp_path / 'tasks.db'}")
    await upgrade(database)
    try:
        await register_task_definition(database, "acme", "approve", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
        with pytest.raises(TaskError, match=r"formSchema.properties.code.pattern: regex /\(a\)\\1/ uses syntax"):
            await register_task_definition(database, "acme", "approve", {"type": "object", "properties": {"code": {"pattern": "(a)\\1"}}})
        with pytest.raises(TaskError, match=r"formSchema.\$ref: 'https://example.com/x.json' is not a reference within this schema"):
            await register_task_definition(database, "acme", "approve", {"$ref": "https://example.com/x.json"})
    finally:
        await database.dispose()


# ------------------------------------------------------------------------ real runs (Temporal)

_RUNAWAY = "($f := function($n){$f($n+1)}; $f(0))"


async def test_hostile_expressions_in_runs_end_and_others_keep_running(stack: object) -> None:
    """On a real worker: a hostile expression inside control.tryCatch ends SUCCEEDED through catch,
    one without catch ends FAILED with an ExpressionError (not stuck RUNNING, as it was: the
    workflow task failed on the deadlock detector forever), a catastrophic regex takes no time,
    and a normal run launched alongside keeps its pace."""
    import asyncio
    import uuid

    from runtime_bootstrap._stack import Stack
    from runtime_core.publishing import publish_definitions
    from runtime_core.readmodel import run_view

    assert isinstance(stack, Stack)
    tenant = f"t-{uuid.uuid4().hex[:8]}"

    def assign(step_id: str, **values: str) -> dict[str, object]:
        return {"id": step_id, "type": "transform.assign", "config": {"assign": {k: {"$expr": v} for k, v in values.items()}}}

    definitions = [
        {"id": "caught", "version": 1, "name": "caught", "steps": [
            {"id": "guard", "type": "control.tryCatch", "captureErrorAs": "err",
             "try": [assign("loop", x=_RUNAWAY), assign("range", y="($n := 10000000; [1..$n])")],
             "catch": [assign("handled", code="vars.err.code", bound="vars.err.details.bound", category="vars.err.category")]}]},
        {"id": "uncaught", "version": 1, "name": "uncaught", "steps": [assign("grid", z="[1..1e4].([1..1e4])")]},
        {"id": "regex", "version": 1, "name": "regex", "steps": [
            assign("match", m=f'$match("{EVIL_INPUT}", {CATASTROPHIC})', found="$contains(payload.s, /b+/)"),
            {"id": "guard", "type": "control.tryCatch", "captureErrorAs": "err",
             "try": [assign("eval", e="$eval(payload.source)")], "catch": [assign("handled", code="vars.err.code")]}]},
        {"id": "normal", "version": 1, "name": "normal", "steps": [
            {"id": "each", "type": "control.forEach", "items": {"$expr": "[1..5]"}, "itemVar": "n", "body": [
                {"id": "echo", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "n"}}, "saveAs": "echoed"}},
                assign("sum", total="$sum([vars.total, vars.echoed.n])")]}]},
    ]
    outcome = await publish_definitions(stack.database, stack.registry, tenant, definitions)
    assert outcome.published, outcome.errors

    started = asyncio.get_running_loop().time()
    normal = await stack.launcher.launch(tenant, "normal", {})
    runs = {
        "caught": await stack.launcher.launch(tenant, "caught", {}),
        "uncaught": await stack.launcher.launch(tenant, "uncaught", {}),
        "regex": await stack.launcher.launch(tenant, "regex", {"s": "abbbc", "source": "$match('aa', /(a)\\1/)"}),
    }

    async def finish(launched: Any) -> dict[str, Any]:
        handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
        try:
            await asyncio.wait_for(handle.result(), timeout=60)
        except TimeoutError:
            raise AssertionError(f"run {launched.run_id} never ended") from None
        except Exception:
            pass  # a failed run
        for _ in range(100):  # the read model follows Temporal
            view = await run_view(stack.database, launched.run_id)
            if view is not None and view["status"] not in ("RUNNING", "WAITING", "PENDING"):
                return view
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {launched.run_id} has no terminal status in the read model")

    views = dict(zip(runs, await asyncio.gather(*(finish(r) for r in runs.values())), strict=True))
    normal_view = await finish(normal)
    elapsed = asyncio.get_running_loop().time() - started

    caught = views["caught"]
    assert caught["status"] == "SUCCEEDED", caught
    assert caught["vars"]["code"] == BUDGET_CODE and caught["vars"]["bound"] == "steps" and caught["vars"]["category"] == "ExpressionError"
    uncaught = views["uncaught"]
    assert uncaught["status"] == "FAILED", uncaught
    assert uncaught["error"]["category"] == "ExpressionError" and uncaught["error"]["code"] == BUDGET_CODE
    assert "1,000,000 size units" in uncaught["error"]["message"]
    regex = views["regex"]
    assert regex["status"] == "SUCCEEDED", regex
    assert regex["vars"]["m"] is None and regex["vars"]["found"] is True and regex["vars"]["code"] == REGEX_UNSUPPORTED_CODE
    assert normal_view["status"] == "SUCCEEDED" and normal_view["vars"]["total"] == 15
    assert elapsed < 30, elapsed  # five actions; nothing waited on a stuck workflow task
