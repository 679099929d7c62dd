"""Publish-time validation: every problem at once, each with a path and a code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime_core.dsl import ValidationContext, definition_hash, validate_definition

from .conftest import SHARED_SCENARIOS


def _wf(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "w", "version": 1, "name": "w", "steps": list(steps), **extra}


def _assign(step_id: str, **exprs: str) -> dict[str, Any]:
    return {"id": step_id, "type": "transform.assign", "config": {"assign": {k: {"$expr": v} for k, v in exprs.items()}}}


CASES = [
    ("duplicate ids", _wf(_assign("a", x="1"), _assign("a", y="2")), [("root.steps[1]", "DUPLICATE_STEP_ID")]),
    ("bad jsonata", _wf(_assign("a", x="payload.amount >")), [("root.steps[0]", "EXPRESSION_PARSE")]),
    ("unknown action", _wf({"id": "c", "type": "action.call", "config": {"actionId": "no.such", "version": 1}}), [("root.steps[0]", "ACTION_NOT_REGISTERED")]),
    ("missing itemVar", _wf({"id": "l", "type": "control.forEach", "items": {"$expr": "[1]"}, "body": []}), [("root.steps[0]", "SCHEMA_MISSING")]),
    ("unknown key", _wf({"id": "r", "type": "control.return", "colour": "red"}), [("root.steps[0]", "SCHEMA_EXTRA_FORBIDDEN")]),
    ("unknown type", _wf({"id": "r", "type": "control.goto"}), [("root.steps[0]", "SCHEMA_UNION_TAG_INVALID")]),
    ("wait both", _wf({"id": "t", "type": "time.wait", "config": {"durationMs": 1, "until": {"$expr": "$now()"}}}), [("root.steps[0]", "TIME_WAIT_DURATION_XOR_UNTIL")]),
    ("wait neither", _wf({"id": "t", "type": "time.wait", "config": {}}), [("root.steps[0]", "TIME_WAIT_DURATION_XOR_UNTIL")]),
    ("assign meta", _wf(_assign("a", **{"meta.state": "1"})), [("root.steps[0]", "NOT_ASSIGNABLE")]),
    ("assign loop item", _wf({"id": "l", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "it", "body": [_assign("b", **{"it.x": "1"})]}), [("root.steps[0].body.steps[0]", "NOT_ASSIGNABLE")]),
    ("concurrency 0", _wf({"id": "l", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "it", "concurrency": 0, "body": []}), [("root.steps[0]", "SCHEMA_GREATER_THAN_EQUAL")]),
    ("nested path", _wf({"id": "i", "type": "control.if", "condition": {"$expr": "true"}, "then": [_assign("a", x="(")]}), [("root.steps[0].then.steps[0]", "EXPRESSION_PARSE")]),
    ("bad payload schema", _wf(_assign("a", x="1"), payloadSchema={"type": "nonsense"}), [("root", "INVALID_PAYLOAD_SCHEMA")]),
    ("huge range", _wf(_assign("a", x="$count([1..100001])")), [("root.steps[0]", "EXPRESSION_UNBOUNDED")]),
    ("bad workflow id", {**_wf(_assign("a", x="1")), "id": "Bad Id"}, [("root", "SCHEMA_STRING_PATTERN_MISMATCH")]),
    ("missing name", {k: v for k, v in _wf().items() if k != "name"}, [("root", "SCHEMA_MISSING")]),
    ("unpublished child", _wf({"id": "c", "type": "control.callWorkflow", "workflowId": "child", "workflowVersion": 2}), [("root.steps[0]", "WORKFLOW_NOT_PUBLISHED")]),
]


@pytest.mark.parametrize(("label", "document", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_definitions_report_path_and_code(label: str, document: dict[str, Any], expected: list[tuple[str | None, str]]) -> None:
    """Each invalid definition is rejected with exactly the expected errors."""
    ctx = ValidationContext(is_action_registered=lambda a, v: a.startswith("core."), is_workflow_published=lambda w, v: False)
    _model, problems = validate_definition(document, ctx)
    errors = [(p.stepPath, p.code) for p in problems if p.severity == "error"]
    assert errors == expected, [p.to_dict() for p in problems]
    assert all(p.message for p in problems)


def test_every_problem_reported_at_once() -> None:
    """The shared invalid scenario yields all four of its problems in one report."""
    if not SHARED_SCENARIOS.is_dir():
        pytest.skip("../shared/scenarios is not present")
    document = json.loads((SHARED_SCENARIOS / "18-publish-rejects-invalid.json").read_text())["definitions"][0]
    _model, problems = validate_definition(document, ValidationContext(is_action_registered=lambda a, v: a.startswith("core.")))
    assert {p.code for p in problems} == {"SCHEMA_MISSING", "DUPLICATE_STEP_ID", "EXPRESSION_PARSE", "ACTION_NOT_REGISTERED"}


def test_warnings_do_not_block() -> None:
    """A step after control.return is a warning; the definition still validates."""
    model, problems = validate_definition(_wf({"id": "r", "type": "control.return"}, _assign("late", x="1")))
    assert model is not None
    assert [(p.severity, p.code, p.stepPath) for p in problems] == [("warning", "UNREACHABLE_STEP", "root.steps[1]")]


def test_hash_is_canonical() -> None:
    """Key order does not change the definition hash; content does."""
    a = {"id": "w", "version": 1, "name": "n", "steps": []}
    b = {"steps": [], "name": "n", "version": 1, "id": "w"}
    assert definition_hash(a) == definition_hash(b)
    assert definition_hash(a) != definition_hash({**a, "name": "m"})
