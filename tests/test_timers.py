"""Timers on time (issue 15): the embedded server's timer settings, and the timers the interpreter asks for.

How late timers fire is measured by ``benchmarks/timers.py`` (pair 8 of ``benchmarks/run.py``),
never asserted here. These tests pin what the fix rests on: the dev server is started with the
timer settings (values it accepts), and a ``time.wait`` or a retry backoff asks Temporal for a
timer of the requested length, not a rounded one.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType

from runtime_bootstrap import _devserver
from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.publishing import publish_definitions

TIMER_SETTINGS = {"history.timerProcessorMaxTimeShift": "10ms", "history.timerProcessorMaxPollRPS": 1000}


def _dynamic_config(args: list[str]) -> dict[str, Any]:
    """``--dynamic-config-value KEY=VALUE`` pairs of a command line, values parsed as the server parses them (JSON)."""
    values = [args[i + 1] for i, arg in enumerate(args) if arg == "--dynamic-config-value"]
    return {key: json.loads(raw) for key, _, raw in (value.partition("=") for value in values)}


def test_dev_server_command_carries_the_timer_settings() -> None:
    """Every ``temporal server start-dev`` the runtime runs carries the timer settings, as JSON values.

    A bare ``10ms`` is not JSON: the server refuses to start ("invalid JSON value for key").
    """
    args = DevServer(port=7999, namespaces=("a", "b")).command(binary="temporal")
    assert args[:3] == ["temporal", "server", "start-dev"]
    config = _dynamic_config(args)
    assert config == {**config, **TIMER_SETTINGS}
    assert config["history.transferProcessorMaxPollRPS"] == 1000
    assert len(config) == len(_devserver.DYNAMIC_CONFIG)


def test_the_running_dev_server_was_started_with_them(temporal_server: DevServer) -> None:
    """The session's server (the one every test and ``wfr dev`` starts the same way) runs with them: it accepted the values."""
    proc = temporal_server._proc
    assert proc is not None and proc.poll() is None
    config = _dynamic_config([str(a) for a in proc.args])  # type: ignore[union-attr]
    assert config == {**config, **TIMER_SETTINGS}


async def _history(stack: Stack, workflow_id: str) -> list[Any]:
    return [e async for e in stack.client.get_workflow_handle(workflow_id).fetch_history_events()]


async def _run(stack: Stack, definition: dict[str, Any]) -> list[Any]:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [definition])
    assert outcome.published, outcome.errors
    launched = await stack.launcher.launch(tenant, definition["id"], {})
    await stack.client.get_workflow_handle(launched.temporal_workflow_id).result()
    return await _history(stack, launched.temporal_workflow_id)


def _timers(events: list[Any]) -> list[timedelta]:
    return [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]


async def test_retry_backoff_is_a_timer_of_exactly_backoff_ms(sqlite_stack: Stack) -> None:
    """``backoffMs: 10`` then ``backoffMs * 3``: timers of 10 ms and 30 ms between the attempts (none rounded to a second)."""
    definition = {"id": f"retry-{uuid.uuid4().hex[:6]}", "version": 1, "name": "retry", "steps": [
        {"id": "r", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"category": "TransientError", "succeedOnAttempt": 3}},
         "retry": {"maxAttempts": 3, "backoffMs": 10, "backoffMultiplier": 3}}]}
    events = await _run(sqlite_stack, definition)
    assert _timers(events) == [timedelta(milliseconds=10), timedelta(milliseconds=30)]
    # each timer sits between two attempts of the action: attempt, timer, attempt, timer, attempt
    # (core.fail is a short action: each attempt is a local activity's marker)
    kinds = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            kinds.append("timer")
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED or (
            e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            and b"workflowRuntimeV2Action" in e.marker_recorded_event_attributes.details["data"].payloads[0].data
        ):
            kinds.append("attempt")
    assert kinds == ["attempt", "timer"] * 2 + ["attempt"]


async def test_time_wait_timer_is_the_rest_of_its_duration(sqlite_stack: Stack) -> None:
    """A ``time.wait`` of 1 s starts at most one timer, of at most 1 s (opening the wait's rows counts towards it), never more."""
    definition = {"id": f"wait-{uuid.uuid4().hex[:6]}", "version": 1, "name": "wait", "steps": [{"id": "w", "type": "time.wait", "config": {"durationMs": 1000}}]}
    timers = _timers(await _run(sqlite_stack, definition))
    assert len(timers) <= 1
    assert all(timedelta(0) < t <= timedelta(seconds=1) for t in timers)
