"""Public modules re-export an explicit, pinned set of names."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "runtime_core.contract": {"TASK_QUEUE", "WORKFLOW_TYPE", "RunInput", "ActionRequest", "workflow_id_for_run"},
    "runtime_core.launcher": {"LaunchError", "LaunchedRun", "Launcher"},
    "runtime_core.publishing": {"PublishOutcome", "PublishedVersion", "publish_definitions"},
    "runtime_core.worker": {"PASSTHROUGH_MODULES", "build_authored_worker", "connect_temporal", "serve", "workflow_runner"},
    "runtime_core.actions": {"ENTRY_POINT_GROUP", "ActionContext", "ActionFailure", "ActionHandler", "ActionRegistry", "ActionSpec", "register_builtins"},
    "runtime_core.interpreter": {"InterpreterWorkflow"},
    "runtime_core.housekeeping": {"HousekeepingActivities", "HousekeepingWorkflow", "ensure_housekeeping_schedule", "sweep_expired"},
    "runtime_core.logs": {"JsonFormatter", "configure_logging", "configured_secrets", "log_context"},
    "workflow_worker": {"__version__", "main", "run"},
    "domain_worker": {"RefusedQueue", "__version__", "check_queue", "main", "run"},
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exports_are_pinned(module: str) -> None:
    """`__all__` contains the pinned names, each of which exists."""
    mod = importlib.import_module(module)
    assert EXPORTS[module] <= set(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_contract_constants() -> None:
    """The Temporal contract is spelled exactly as the spec says."""
    from runtime_core import contract

    assert contract.TASK_QUEUE == "workflow-runtime-v2"
    assert contract.WORKFLOW_TYPE == "workflowRuntimeV2RunWorkflow"
    assert contract.workflow_id_for_run("abc") == "workflow-runtime-v2:run:abc"
    assert (contract.EVENT_SIGNAL, contract.HUMAN_TASK_SIGNAL) == ("workflowRuntimeV2Event", "workflowRuntimeV2HumanTask")
    assert (contract.QUERY_CURRENT_STEP, contract.QUERY_CURRENT_WAIT, contract.QUERY_INTERPRETER_SUMMARY) == (
        "workflowRuntimeV2CurrentStep", "workflowRuntimeV2CurrentWait", "workflowRuntimeV2InterpreterSummary")
