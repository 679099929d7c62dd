"""Determinism: recorded histories of representative runs must replay on the current interpreter.

The corpus in tests/histories/ was recorded from real runs of every scenario shape. Any
interpreter change that makes one of them non-deterministic fails here; such a change must
bump SEMANTICS_VERSION and keep old histories replaying (patching), not re-record them.

Record a fresh corpus (only when adding shapes), with the packages installed:
    python scripts/record_histories.py
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime_core.interpreter import InterpreterWorkflow
from runtime_core.interpreter._workflow import CHILD_WAITING_PATCH, LOCAL_ACTIONS_PATCH, LOCAL_PROJECTIONS_PATCH
from runtime_core.worker import workflow_runner

HISTORIES = Path(__file__).parent / "histories"


def _corpus() -> list[Path]:
    return sorted(HISTORIES.rglob("*.json"))


def test_corpus_is_present() -> None:
    """The corpus covers the scenario shapes (a missing corpus must not pass silently)."""
    assert len(_corpus()) >= 20


def _patches(events: list[dict[str, Any]]) -> list[Any]:
    markers = [e["markerRecordedEventAttributes"] for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"]
    return [json.loads(base64.b64decode(m["details"]["patch-data"]["payloads"][0]["data"])) for m in markers if m["markerName"] == "core_patch"]


def test_corpus_covers_child_waiting() -> None:
    """Histories with the child-status signals (patch ``wfr-child-waiting-1``) are in the corpus:
    children that signal WAITING to their parent, a parent receiving it, cancel and timeout."""
    folder = HISTORIES / "child-waiting"
    recent = sorted(folder.glob("*.json"))
    assert len(recent) >= 10
    signalled = received = 0
    for path in recent:
        events = json.loads(path.read_text())["history"]["events"]
        assert {"id": CHILD_WAITING_PATCH, "deprecated": False} in _patches(events), path.name
        kinds = {e["eventType"] for e in events}
        signalled += "EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in kinds
        received += "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" in kinds and "--child" not in path.name
    assert signalled >= 5 and received >= 5
    assert {"cancel-waiting-child-tree.json", "waiting-child-times-out-caught.json", "grandchild-waiting-tree-waiting--child0.json"} <= {p.name for p in recent}


def test_corpus_covers_local_projections() -> None:
    """Histories recorded after the local-projections patch (marker + local finalize) are in the corpus too."""
    recent = sorted((HISTORIES / "local-projections").glob("*.json"))
    assert len(recent) >= 20
    for path in recent:
        events = json.loads(path.read_text())["history"]["events"]
        markers = [e["markerRecordedEventAttributes"] for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"]
        patches = [json.loads(base64.b64decode(m["details"]["patch-data"]["payloads"][0]["data"])) for m in markers if m["markerName"] == "core_patch"]
        assert {"id": LOCAL_PROJECTIONS_PATCH, "deprecated": False} in patches, path.name
        assert any(m["markerName"] == "core_local_activity" for m in markers), path.name


def test_corpus_covers_local_actions() -> None:
    """Histories whose short actions ran as local activities (patch ``wfr-local-actions-1``) are in the corpus."""
    recent = sorted((HISTORIES / "local-actions").glob("*.json"))
    assert len(recent) >= 15
    for path in recent:
        events = json.loads(path.read_text())["history"]["events"]
        assert {"id": LOCAL_ACTIONS_PATCH, "deprecated": False} in _patches(events), path.name
        markers = [e["markerRecordedEventAttributes"] for e in events if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"]
        actions = [m for m in markers if m["markerName"] == "core_local_activity" and b"workflowRuntimeV2Action" in base64.b64decode(m["details"]["data"]["payloads"][0]["data"])]
        assert actions, f"{path.name}: no action ran as a local activity"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["direct", "sandboxed"])
@pytest.mark.parametrize("path", _corpus(), ids=[str(p.relative_to(HISTORIES).with_suffix("")) for p in _corpus()])
async def test_history_replays(path: Path, sandboxed: bool) -> None:
    """The recorded history replays without non-determinism, run directly (the workers' default)
    and inside Temporal's sandbox, which fails the replay on a host clock, random or I/O call."""
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json(data["workflowId"], data["history"])
    replayer = Replayer(workflows=[InterpreterWorkflow], workflow_runner=workflow_runner(sandboxed=sandboxed))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
