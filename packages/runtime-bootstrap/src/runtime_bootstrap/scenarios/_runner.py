"""Running scenario files end to end on a stack (see ../shared/spec/SCENARIOS.md)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus

from runtime_bootstrap._stack import Stack
from runtime_core.contract import MockSpec
from runtime_core.ingress import EventIngress, TaskResponseRejected, complete_task
from runtime_core.launcher import LaunchError
from runtime_core.persistence import RunRow, TaskDefinition, TaskRow, WaitRow, utcnow
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import TERMINAL_STATUSES, run_view

__all__ = ["ScenarioError", "collect_files", "load_scenario", "run_scenario"]

_STEP_KEYS = ("stepId", "stepPath", "type", "status", "attempts", "itemIndex")
_POLL_S = 0.05


class ScenarioError(ValueError):
    """A scenario file that cannot be run as written."""


def collect_files(paths: Iterable[str]) -> list[Path]:
    """Expand files and folders (``*.json`` in name order) into scenario files.

    Raises:
        ScenarioError: A path does not exist.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError(f"{raw}: no such file or folder")
    return files


def load_scenario(path: Path) -> dict[str, Any]:
    """Read and shape-check a scenario file.

    Raises:
        ScenarioError: Not JSON, or a required key is missing or mistyped.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ScenarioError(f"{path}: cannot read scenario: {err}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a JSON object")
    for key, kind in (("name", str), ("definitions", list), ("start", dict)):
        if not isinstance(data.get(key), kind):
            raise ScenarioError(f"{path}: '{key}' is required and must be a {kind.__name__}")
    unknown = set(data) - {"name", "definitions", "taskDefinitions", "start", "mocks", "script", "await", "timeoutMs", "expect", "description"}
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}")
    if data.get("await", "terminal") not in ("terminal", "none"):
        raise ScenarioError(f"{path}: 'await' must be 'terminal' or 'none'")
    return data


def _shape_run(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "runId": view["runId"],
        "workflowId": view["workflowId"],
        "workflowVersion": view["workflowVersion"],
        "status": view["status"],
        "payload": view["payload"],
        "vars": view["vars"],
        "meta": view["meta"],
        "error": view["error"],
        "steps": [{k: s[k] for k in _STEP_KEYS} for s in view["steps"]],
        "waits": view["waits"],
        "tasks": [{k: t[k] for k in ("taskType", "status", "title")} for t in view["tasks"]],
        "children": [_shape_run(c) for c in view["children"]],
    }


class _Script:
    def __init__(self, stack: Stack, tenant: str, run_id: str, deadline: float) -> None:
        self.stack, self.tenant, self.run_id, self.deadline = stack, tenant, run_id, deadline
        self.rejections: list[dict[str, Any]] = []

    def _left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()

    async def _status(self) -> str | None:
        async with self.stack.database.sessions() as session:
            return (await session.execute(select(RunRow.status).where(RunRow.run_id == self.run_id))).scalar_one_or_none()

    async def wait_status(self, status: str) -> None:
        while self._left() > 0:
            current = await self._status()
            if current == status:
                return
            if current in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
                raise ScenarioError(f"waitFor status {status}: the run ended {current}")
            await asyncio.sleep(_POLL_S)
        raise ScenarioError(f"waitFor status {status}: not reached within timeoutMs")

    async def wait_open(self, wait_type: str) -> None:
        while self._left() > 0:
            async with self.stack.database.sessions() as session:
                tree = select(RunRow.run_id).where(RunRow.root_run_id == self.run_id)
                query = select(WaitRow.id).where(WaitRow.run_id.in_(tree), WaitRow.wait_type == wait_type, WaitRow.status == "WAITING")
                if wait_type == "human":
                    # the wait row of an answered task may lag behind (projections are buffered
                    # until the run's next activity); the task row is authoritative
                    query = query.join(TaskRow, (TaskRow.run_id == WaitRow.run_id) & (TaskRow.wait_seq == WaitRow.seq)).where(TaskRow.status == "PENDING")
                found = (await session.execute(query.limit(1))).first()
            if found is not None:
                return
            if await self._status() in TERMINAL_STATUSES:
                raise ScenarioError(f"waitFor openWait {wait_type}: the run ended first")
            await asyncio.sleep(_POLL_S)
        raise ScenarioError(f"waitFor openWait {wait_type}: no open {wait_type} wait within timeoutMs")

    async def send_event(self, index: int, arg: Any) -> None:
        if not isinstance(arg, dict) or not isinstance(arg.get("eventName"), str):
            raise ScenarioError(f"script[{index}]: event needs eventName")
        try:
            await EventIngress(self.stack.database).send(
                self.tenant, arg["eventName"], arg.get("correlationKey"), arg.get("payload", {}), event_id=arg.get("eventId"), source="scenario"
            )
        except ValueError as err:
            raise ScenarioError(f"script[{index}]: {err}") from None

    async def complete_task(self, index: int, arg: Any) -> None:
        arg = arg if isinstance(arg, dict) else {}
        async with self.stack.database.sessions() as session:
            tree = select(RunRow.run_id).where(RunRow.root_run_id == self.run_id)
            task_id = (
                await session.execute(select(TaskRow.task_id).where(TaskRow.run_id.in_(tree), TaskRow.status == "PENDING").order_by(TaskRow.created_at, TaskRow.task_id).limit(1))
            ).scalar_one_or_none()
        if task_id is None:
            raise ScenarioError(f"script[{index}]: completeTask: the run tree has no open task")
        admin = bool(arg.get("admin", False))
        try:
            await complete_task(self.stack.database, self.stack.client, self.tenant, task_id, arg.get("response"), admin=admin, actor="scenario-admin" if admin else None)
        except TaskResponseRejected as err:
            self.rejections.append({"category": "ValidationError", "message": str(err), "errors": err.errors})

    async def run(self, steps: list[Any]) -> None:
        for index, step in enumerate(steps):
            if not isinstance(step, dict) or len(step) != 1:
                raise ScenarioError(f"script[{index}]: each script step is an object with exactly one key")
            (kind, arg), = step.items()
            if kind == "waitFor":
                if "status" in arg:
                    await self.wait_status(arg["status"])
                elif "openWait" in arg:
                    await self.wait_open(arg["openWait"])
                else:
                    raise ScenarioError(f"script[{index}]: waitFor needs 'status' or 'openWait'")
            elif kind == "sleepMs":
                await asyncio.sleep(float(arg) / 1000)
            elif kind == "cancel":
                await self.stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{self.run_id}").cancel()
            elif kind == "event":
                await self.send_event(index, arg)
            elif kind == "completeTask":
                await self.complete_task(index, arg)
            else:
                raise ScenarioError(f"script[{index}]: unknown script step {kind!r}")


async def _await_terminal(stack: Stack, run_id: str, deadline: float) -> None:
    handle = stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}")
    left = deadline - asyncio.get_running_loop().time()
    if left > 0:
        try:
            await asyncio.wait_for(handle.result(), timeout=left)
        except TimeoutError:
            return
        except Exception:
            pass
    # finalize writes the run row before the workflow closes; allow for the read to catch up
    while asyncio.get_running_loop().time() < deadline:
        async with stack.database.sessions() as session:
            status = (await session.execute(select(RunRow.status).where(RunRow.run_id == run_id))).scalar_one()
        if status in TERMINAL_STATUSES:
            return
        await asyncio.sleep(_POLL_S)


async def _stop_leftovers(stack: Stack, run_id: str) -> None:
    """Terminate a run tree the scenario left running, so nothing outlives the scenario."""
    handle = stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}")
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate(reason="scenario finished")
    except Exception:
        pass


async def run_scenario(stack: Stack, scenario: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario on ``stack`` with a fresh tenant and return its outcome."""
    tenant = f"scn-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, Any] = {"name": scenario["name"], "published": False, "run": None, "rejections": [], "scriptError": None}
    mocks: dict[str, MockSpec] = {}
    for action_id, spec in (scenario.get("mocks") or {}).items():
        if not isinstance(spec, dict) or not ({"output", "error"} & set(spec)):
            outcome["scriptError"] = f"mocks.{action_id}: give 'output' or 'error'"
            return outcome
        mocks[action_id] = MockSpec(output=spec.get("output"), error=spec.get("error"))
    result = await publish_definitions(stack.database, stack.registry, tenant, scenario["definitions"], extra_actions=[(a, 1) for a in mocks])
    if not result.published:
        outcome["publishErrors"] = result.errors
        return outcome
    outcome["published"] = True
    if scenario.get("taskDefinitions"):
        now = utcnow()
        async with stack.database.sessions.begin() as session:
            for item in scenario["taskDefinitions"]:
                session.add(TaskDefinition(tenant=tenant, task_type=item["taskType"], form_schema=item["formSchema"], created_at=now, updated_at=now))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(scenario.get("timeoutMs", 30_000)) / 1000
    start = scenario["start"]
    try:
        launched = await stack.launcher.launch(tenant, start["workflowId"], start.get("payload", {}), version=start.get("version"), mocks=mocks)
    except LaunchError as err:
        outcome["launchError"] = str(err)
        return outcome
    script = _Script(stack, tenant, launched.run_id, deadline)
    try:
        await script.run(scenario.get("script") or [])
    except ScenarioError as err:
        outcome["scriptError"] = str(err)
    outcome["rejections"] = script.rejections
    if scenario.get("await", "terminal") == "terminal" and outcome["scriptError"] is None:
        await _await_terminal(stack, launched.run_id, deadline)
    view = await run_view(stack.database, launched.run_id, tenant=tenant)
    assert view is not None
    if view["status"] not in TERMINAL_STATUSES:
        try:
            summary = await stack.client.get_workflow_handle(launched.temporal_workflow_id).query("workflowRuntimeV2InterpreterSummary")
            view.update(payload=summary["payload"], vars=summary["vars"], meta=summary["meta"])
        except Exception:
            pass
        await _stop_leftovers(stack, launched.run_id)
    outcome["run"] = _shape_run(view)
    return outcome
