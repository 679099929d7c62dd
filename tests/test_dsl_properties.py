"""Property-based tests: random definitions and mutations of valid ones.

Publishing never crashes; every rejection has a path and a code; every accepted definition
round-trips through JSON unchanged, hashes the same and satisfies the published JSON Schema.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime_core.dsl import ValidationContext, WorkflowDefinition, definition_hash, definition_json_schema, validate_definition

SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(definition_json_schema())
CTX = ValidationContext(is_action_registered=lambda a, v: a.startswith("core.") and v == 1, is_workflow_published=lambda w, v: w == "child")

ids = st.one_of(st.text(alphabet="abcdefghij_-", min_size=1, max_size=8), st.text(alphabet="abcdefghij_-", min_size=1, max_size=8), st.sampled_from(["a", "bad id", ""]))
exprs = st.sampled_from(["1", "payload.x", "vars.total + 1", "$sum(payload.items)", "'ok'", "[1..3]", "$now()", "payload.x > 2", "payload.amount >", "("])
expr_value = exprs.map(lambda e: {"$expr": e})
paths = st.sampled_from(["vars.total", "total", "payload.out.x", "vars.a.b", "x", "meta.state", "error", "vars", ""])
literals = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5), st.lists(st.integers(), max_size=3))
values = st.one_of(literals, expr_value, st.just({"$secret": "API_KEY"}))


def _action(step_id: str) -> st.SearchStrategy[dict[str, Any]]:
    config = st.fixed_dictionaries(
        {"actionId": st.sampled_from(["core.echo", "core.fail", "crm.ticket"]), "version": st.integers(0, 2)},
        optional={"inputMapping": st.dictionaries(st.sampled_from(["a", "b"]), values, max_size=2), "saveAs": paths, "idempotencyKey": expr_value},
    )
    retry = st.fixed_dictionaries({"maxAttempts": st.integers(0, 4), "backoffMs": st.integers(0, 50)}, optional={"retryOn": st.lists(st.sampled_from(["TransientError", "E1"]), max_size=2)})
    return st.fixed_dictionaries(
        {"id": st.just(step_id), "type": st.just("action.call"), "config": config},
        optional={"retry": retry, "onError": st.fixed_dictionaries({"policy": st.sampled_from(["fail", "continue"])})},
    )


def _steps(children: st.SearchStrategy[list[dict[str, Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    return ids.flatmap(
        lambda i: st.one_of(
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("transform.assign"), "config": st.fixed_dictionaries({"assign": st.dictionaries(paths, expr_value, max_size=3)})}),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("state.set"), "config": st.fixed_dictionaries({"state": st.text(max_size=4)})}),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("control.return")}),
            _action(i),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("control.if"), "condition": expr_value, "then": children}, optional={"else": children}),
            st.fixed_dictionaries(
                {"id": st.just(i), "type": st.just("control.forEach"), "items": expr_value, "itemVar": st.sampled_from(["item", "n", "vars"]), "body": children},
                optional={"concurrency": st.integers(0, 3), "collect": expr_value, "saveAs": paths},
            ),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("control.tryCatch"), "try": children, "catch": children}, optional={"captureErrorAs": st.sampled_from(["err", "meta"])}),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("control.callWorkflow"), "workflowId": st.sampled_from(["child", "ghost"]), "workflowVersion": st.integers(1, 2)}),
            st.fixed_dictionaries({"id": st.just(i), "type": st.just("time.wait"), "config": st.fixed_dictionaries({}, optional={"durationMs": st.integers(0, 10), "until": expr_value})}),
        )
    )


step_lists = st.recursive(st.just([]), lambda inner: st.lists(_steps(inner), max_size=3), max_leaves=8)
definitions = st.fixed_dictionaries(
    {"id": st.sampled_from(["wf", "invoice.approval", "Bad"]), "version": st.integers(0, 3), "name": st.text(max_size=6), "steps": step_lists},
    optional={"description": st.text(max_size=5), "payloadSchema": st.sampled_from([{"type": "object"}, {"type": "nonsense"}])},
)


def _check_problems(problems: list[Any]) -> None:
    for problem in problems:
        assert problem.severity in ("error", "warning")
        assert problem.code and problem.code.upper() == problem.code
        assert isinstance(problem.stepPath, str) and problem.stepPath.startswith("root")
        assert problem.message


def _check_accepted(document: dict[str, Any], model: WorkflowDefinition) -> None:
    dumped = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped == document
    assert json.loads(json.dumps(dumped)) == document
    assert definition_hash(dumped) == definition_hash(json.loads(json.dumps(document)))
    errors = list(SCHEMA_VALIDATOR.iter_errors(document))
    assert not errors, errors[0].message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions)
def test_random_definitions(document: dict[str, Any]) -> None:
    """Validation never raises; problems are well-formed; accepted documents round-trip."""
    model, problems = validate_definition(document, CTX)
    _check_problems(problems)
    if not any(p.severity == "error" for p in problems):
        assert model is not None
        _check_accepted(document, model)


VALID = {"id": "wf", "version": 1, "name": "n", "steps": [
    {"id": "a", "type": "transform.assign", "config": {"assign": {"total": {"$expr": "1"}}}},
    {"id": "b", "type": "control.if", "condition": {"$expr": "vars.total > 0"}, "then": [
        {"id": "c", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"t": {"$expr": "vars.total"}}}, "retry": {"maxAttempts": 2, "backoffMs": 1}}]},
]}


def _locations(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _locations(value, (*here, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _locations(value, (*here, index))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutations_of_a_valid_definition(data: st.DataObject) -> None:
    """Deleting, replacing or adding anything anywhere never crashes validation."""
    document = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        locations = [loc for loc in _locations(document) if loc]
        if not locations:
            break
        loc = data.draw(st.sampled_from(locations))
        parent = document
        for key in loc[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[loc[-1]]
        elif action == "replace":
            parent[loc[-1]] = data.draw(st.one_of(literals, expr_value, st.just({"type": "control.return"}), st.just([])))
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "type", "$expr", "else"]))] = data.draw(literals)
    model, problems = validate_definition(document, CTX)
    _check_problems(problems)
    if not any(p.severity == "error" for p in problems):
        assert model is not None
        _check_accepted(document, model)


good_exprs = st.sampled_from(["1", "payload.x", "vars.total + 1", "$sum(payload.items)", "'ok'", "[1..3]", "$now()", "payload.x > 2"]).map(lambda e: {"$expr": e})
good_paths = st.sampled_from(["vars.total", "total", "payload.out.x", "vars.a.b", "x"])
good_values = st.one_of(literals, good_exprs, st.just({"$secret": "API_KEY"}))


def _good_steps(children: st.SearchStrategy[list[dict[str, Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    base = {"id": st.just("?")}
    return st.one_of(
        st.fixed_dictionaries({**base, "type": st.just("transform.assign"), "config": st.fixed_dictionaries({"assign": st.dictionaries(good_paths, good_exprs, min_size=1, max_size=3)})}),
        st.fixed_dictionaries({**base, "type": st.just("state.set"), "config": st.fixed_dictionaries({"state": st.text(max_size=4)})}),
        st.fixed_dictionaries(
            {**base, "type": st.just("action.call"), "config": st.fixed_dictionaries({"actionId": st.sampled_from(["core.echo", "core.fail"]), "version": st.just(1)},
                                                                                       optional={"inputMapping": st.dictionaries(st.sampled_from(["a", "b"]), good_values, max_size=2), "saveAs": good_paths})},
            optional={"retry": st.fixed_dictionaries({"maxAttempts": st.integers(1, 4), "backoffMs": st.integers(0, 50)}, optional={"jitter": st.booleans(), "backoffMultiplier": st.floats(1, 3)}),
                      "onError": st.fixed_dictionaries({"policy": st.sampled_from(["fail", "continue"])})},
        ),
        st.fixed_dictionaries({**base, "type": st.just("control.if"), "condition": good_exprs, "then": children}, optional={"else": children}),
        st.fixed_dictionaries({**base, "type": st.just("control.forEach"), "items": good_exprs, "itemVar": st.sampled_from(["item", "n"]), "body": children},
                              optional={"concurrency": st.integers(1, 3), "collect": good_exprs, "saveAs": good_paths, "onItemError": st.sampled_from(["fail", "continue"])}),
        st.fixed_dictionaries({**base, "type": st.just("control.tryCatch"), "try": children, "catch": children}),
        st.fixed_dictionaries({**base, "type": st.just("control.callWorkflow"), "workflowId": st.just("child"), "workflowVersion": st.just(1)}),
        st.fixed_dictionaries({**base, "type": st.just("time.wait"), "config": st.one_of(st.fixed_dictionaries({"durationMs": st.integers(0, 10)}), st.fixed_dictionaries({"until": good_exprs}))}),
        st.fixed_dictionaries({**base, "type": st.just("event.wait"), "config": st.fixed_dictionaries({"eventName": st.just("paid"), "correlationKey": good_exprs}, optional={"timeoutMs": st.integers(0, 9)})}),
    )


def _number_ids(steps: list[dict[str, Any]], counter: list[int]) -> list[dict[str, Any]]:
    for step in steps:
        step["id"] = f"s{counter[0]}"
        counter[0] += 1
        for key in ("then", "else", "body", "try", "catch"):
            if key in step:
                _number_ids(step[key], counter)
    return steps


good_definitions = st.fixed_dictionaries(
    {"id": st.just("wf"), "version": st.integers(1, 9), "name": st.text(max_size=6),
     "steps": st.recursive(st.just([]), lambda inner: st.lists(_good_steps(inner), max_size=4), max_leaves=12).map(lambda s: _number_ids(s, [0]))},
    optional={"payloadSchema": st.just({"type": "object"})},
)


@settings(max_examples=200, deadline=None)
@given(good_definitions)
def test_well_formed_definitions_are_accepted(document: dict[str, Any]) -> None:
    """Any definition built only from valid parts publishes, round-trips and fits the schema."""
    model, problems = validate_definition(document, CTX)
    assert not [p for p in problems if p.severity == "error"], [p.to_dict() for p in problems]
    assert model is not None
    _check_accepted(document, model)
