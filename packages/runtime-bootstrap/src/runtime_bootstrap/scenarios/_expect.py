"""Checking a scenario outcome against its ``expect`` block (see SCENARIOS.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["check_expect", "matches"]


def _scalar_equal(expected: Any, actual: Any) -> bool:
    # `true` is not `1`: booleans only equal booleans; 1 and 1.0 are the same JSON number.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual) and (expected is None) == (actual is None)


def matches(expected: Any, actual: Any, where: str, failures: list[str]) -> None:
    """Subset match: objects by named keys (recursively), arrays element-wise with equal length, scalars exactly."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            failures.append(f"{where}: expected an object, got {actual!r}")
            return
        for key, value in expected.items():
            if key not in actual:
                failures.append(f"{where}.{key}: missing (expected {value!r})")
            else:
                matches(value, actual[key], f"{where}.{key}", failures)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            failures.append(f"{where}: expected {len(expected)} items {expected!r}, got {actual!r}")
            return
        for index, (exp, act) in enumerate(zip(expected, actual, strict=True)):
            matches(exp, act, f"{where}[{index}]", failures)
    elif not _scalar_equal(expected, actual):
        failures.append(f"{where}: expected {expected!r}, got {actual!r}")


def _check_run(expect: dict[str, Any], run: dict[str, Any], where: str, failures: list[str]) -> None:
    for key in ("status", "payload", "vars", "meta", "error", "workflowId", "workflowVersion"):
        if key in expect:
            matches(expect[key], run.get(key), f"{where}.{key}", failures)
    if "steps" in expect:
        actual = [[s["stepId"], s["status"]] for s in run.get("steps", [])]
        if actual != expect["steps"]:
            failures.append(f"{where}.steps: expected {expect['steps']}, got {actual}")
    if "stepAttempts" in expect:
        for step_id, want in expect["stepAttempts"].items():
            got = [s["attempts"] for s in run.get("steps", []) if s["stepId"] == step_id]
            ok = got == want if isinstance(want, list) else bool(got) and all(a == want for a in got)
            if not ok:
                failures.append(f"{where}.stepAttempts.{step_id}: expected {want}, got {got or 'no rows'}")
    if "waits" in expect:
        actual = [[w["type"], w["status"]] for w in run.get("waits", [])]
        if actual != expect["waits"]:
            failures.append(f"{where}.waits: expected {expect['waits']}, got {actual}")
    if "tasks" in expect:
        actual = [[t["taskType"], t["status"]] for t in run.get("tasks", [])]
        if actual != expect["tasks"]:
            failures.append(f"{where}.tasks: expected {expect['tasks']}, got {actual}")
    if "children" in expect:
        children = run.get("children", [])
        if len(children) != len(expect["children"]):
            failures.append(f"{where}.children: expected {len(expect['children'])} child runs, got {len(children)}")
        else:
            for index, (want, child) in enumerate(zip(expect["children"], children, strict=True)):
                _check_run(want, child, f"{where}.children[{index}]", failures)


def check_expect(expect: dict[str, Any], outcome: dict[str, Any]) -> list[str]:
    """Every way ``outcome`` fails ``expect`` (empty when it passes)."""
    failures: list[str] = []
    if "published" in expect and expect["published"] != outcome.get("published"):
        failures.append(f"published: expected {expect['published']}, got {outcome.get('published')} {outcome.get('publishErrors') or ''}".rstrip())
    if "rejections" in expect and expect["rejections"] != len(outcome.get("rejections", [])):
        failures.append(f"rejections: expected {expect['rejections']}, got {len(outcome.get('rejections', []))}")
    run_keys = set(expect) - {"published", "rejections"}
    if run_keys:
        run = outcome.get("run")
        if run is None:
            failures.append("run: no run was launched" + (f" ({outcome.get('launchError')})" if outcome.get("launchError") else ""))
        else:
            _check_run({k: expect[k] for k in run_keys}, run, "run", failures)
    if outcome.get("scriptError"):
        failures.append(f"scriptError: {outcome['scriptError']}")
    return failures
