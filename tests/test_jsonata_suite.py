"""The JSONata test suite (../shared/jsonata-test-suite) through our engine and through plain jsonata-python.

Every case of every group file is evaluated twice: by :class:`CompiledExpression` (deterministic
budgets on, regex literals compiled with RE2) and by plain jsonata-python (Python's ``re``, no
budgets; a case's own ``timelimit``/``depth`` applied, as the suite asks). Both must end the same
way (the same result, both undefined, or the same error code) except for the cases listed in
:data:`KNOWN_DIFFERENCES`, each written down in docs/expressions.md. The suite's own expected
results are not the reference: where jsonata-python itself departs from JSONata, we keep
jsonata-python's behaviour, so the comparison is against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonata
import pytest
from jsonata import jexception

from runtime_core.errors import RunError
from runtime_core.expressions import BUDGET_CODE, CompiledExpression, ExpressionParseError

SUITE = Path(__file__).resolve().parent.parent.parent / "shared" / "jsonata-test-suite"
GROUPS = sorted(p.name for p in (SUITE / "groups").iterdir() if p.is_dir()) if (SUITE / "groups").is_dir() else []

#: Not a JSONata error (a Python exception inside jsonata-python): both engines raise one, with no code.
NO_CODE = "(no JSONata code)"

#: jsonata-python's own depth bound (a case's ``depth``) fails with D1011; ours is the depth budget.
SAME_OUTCOME = {("error", "D1011"): ("error", f"{BUDGET_CODE}:depth")}

#: Cases where our engine ends differently from plain jsonata-python, with our outcome and why.
#: Plain jsonata-python is not run for them (the budget ones take seconds there).
KNOWN_DIFFERENCES: dict[str, tuple[tuple[str, Any], str]] = {
    # deliberately over a budget: the suite checks that big inputs work
    "flattening/large.json#0": (("error", f"{BUDGET_CODE}:steps"), "200,000 calls of $string() ([1..2e5].$string()): over the step budget"),
    "flattening/large.json#1": (("error", f"{BUDGET_CODE}:steps"), "200,000 calls of $string() ([1..2e5].$string()): over the step budget"),
    "performance/case000.json#0": (("error", f"{BUDGET_CODE}:steps"), "a filter over all items for each item: about 300,000 evaluation steps"),
    "performance/case001.json#0": (("error", f"{BUDGET_CODE}:steps"), "a filter over all items for each item: about 300,000 evaluation steps"),
    "range-operator/case021.json#0": (("error", f"{BUDGET_CODE}:size"), "a range of 10,000,000 items: over the size budget"),
    "range-operator/case024.json#0": (("error", f"{BUDGET_CODE}:size"), "a range of 10,000,000 items: over the size budget"),
    # regex engines: after an empty match, RE2 (like JavaScript) moves on one character, Python's
    # re tries again at the same position for a non-empty match; JSONata itself raises D1004 here
    "regex/case022.json#0": (("value", "abracadabra"), "iteration over empty matches (RE2 and JavaScript differ from Python's re)"),
}

#: An endless tail call: plain jsonata-python runs into the case's 1 s time limit (D1012), ours
#: stops at the step budget. Both are errors; plain is not run so the test stays fast.
PLAIN_TIMES_OUT: dict[str, tuple[str, Any]] = {
    "tail-recursion/case006.json#0": ("error", f"{BUDGET_CODE}:steps"),
}


def _datasets() -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in (SUITE / "datasets").glob("*.json")}


def _cases(group: str) -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for path in sorted((SUITE / "groups" / group).glob("*.json")):
        data = json.loads(path.read_text())
        for index, case in enumerate(data if isinstance(data, list) else [data]):
            source = case.get("expr")
            if source is None:
                source = (path.parent / case["expr-file"]).read_text()
            out.append((f"{group}/{path.name}#{index}", case, source))
    return out


def _normal(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _plain(source: str, case: dict[str, Any], data: Any) -> tuple[str, Any]:
    try:
        expression = jsonata.Jsonata(source)
        if "timelimit" in case or "depth" in case:
            expression.environment.set_runtime_bounds(case.get("timelimit"), case.get("depth"))
        result = expression.evaluate(data, case.get("bindings") or None)
    except jexception.JException as err:
        return ("error", err.error)
    except Exception:  # a Python error inside jsonata-python
        return ("error", NO_CODE)
    return ("undefined", None) if result is None else ("value", _normal(result))


def _ours(source: str, case: dict[str, Any], data: Any) -> tuple[str, Any]:
    try:
        compiled = CompiledExpression(source)
        # a case's own depth limit applies (the suite checks depth errors); the wall clock is
        # generous so that a loaded machine cannot turn a budget error into a timeout
        result = compiled.evaluate(data, max_depth=case.get("depth", 500), timeout_ms=30_000, bindings=case.get("bindings") or None)
    except ExpressionParseError as err:
        return ("error", err.code or NO_CODE)
    except RunError as err:
        if err.info.code == BUDGET_CODE:
            return ("error", f"{BUDGET_CODE}:{(err.info.details or {}).get('bound')}")
        return ("error", err.info.code or NO_CODE)
    return ("undefined", None) if result is None else ("value", _normal(result))


def test_suite_is_present_and_complete() -> None:
    """The suite is where the project expects it, with all its groups."""
    if not GROUPS:
        pytest.skip("../shared/jsonata-test-suite is not present")
    total = sum(len(_cases(group)) for group in GROUPS)
    assert len(GROUPS) == 102 and total >= 1_600, (len(GROUPS), total)


@pytest.mark.parametrize("group", GROUPS)
def test_group_matches_plain_jsonata(group: str) -> None:
    """Every case of the group ends the same way in our engine as in plain jsonata-python."""
    datasets = _datasets()
    mismatches = []
    for case_id, case, source in _cases(group):
        data = case["data"] if "data" in case else (datasets[case["dataset"]] if case.get("dataset") else None)
        ours = _ours(source, case, data)
        if case_id in KNOWN_DIFFERENCES:
            expected, _why = KNOWN_DIFFERENCES[case_id]
            if expected[0] == "value":
                expected = ("value", _normal(expected[1]))
            if ours != expected:
                mismatches.append(f"{case_id}: known difference changed: ours {ours}, documented {expected}")
            continue
        if case_id in PLAIN_TIMES_OUT:
            if ours != PLAIN_TIMES_OUT[case_id]:
                mismatches.append(f"{case_id}: ours {ours}, expected {PLAIN_TIMES_OUT[case_id]}")
            continue
        plain = _plain(source, case, data)
        if ours != plain and SAME_OUTCOME.get(plain) != ours:
            mismatches.append(f"{case_id} {source[:80]!r}: ours {str(ours)[:120]} != plain {str(plain)[:120]}")
    assert not mismatches, "\n".join(mismatches)
