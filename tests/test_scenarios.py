"""Every scenario in ../shared/scenarios (when present) and tests/scenarios, on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime_bootstrap._stack import Stack
from runtime_bootstrap.scenarios import check_expect, load_scenario, run_scenario

from .conftest import OWN_SCENARIOS, SHARED_SCENARIOS
from .scenario_expectations import EXPECTED_FAILURES


def _files() -> list[Path]:
    files = sorted(OWN_SCENARIOS.glob("*.json"))
    if SHARED_SCENARIOS.is_dir():
        files = sorted(SHARED_SCENARIOS.glob("*.json")) + files
    return files


def _params() -> list[object]:
    params = []
    for path in _files():
        name = json.loads(path.read_text())["name"]
        marks = [pytest.mark.xfail(reason=EXPECTED_FAILURES[name], strict=True)] if name in EXPECTED_FAILURES else []
        params.append(pytest.param(path, id=f"{path.parent.name}/{name}", marks=marks))
    return params


def test_expected_failures_name_real_scenarios() -> None:
    """The expected-failure list may only name scenarios that exist."""
    if not SHARED_SCENARIOS.is_dir():
        pytest.skip("../shared/scenarios is not present")
    names = {json.loads(p.read_text())["name"] for p in _files()}
    assert set(EXPECTED_FAILURES) <= names, set(EXPECTED_FAILURES) - names


def test_own_scenario_names_are_unique() -> None:
    """Scenario names identify results; they must not collide."""
    names = [json.loads(p.read_text())["name"] for p in _files()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", _params())
async def test_scenario(stack: Stack, path: Path) -> None:
    """Run the scenario and check its `expect` block."""
    scenario = load_scenario(path)
    outcome = await run_scenario(stack, scenario)
    failures = check_expect(scenario.get("expect", {}), outcome)
    assert not failures, "\n".join(failures)
