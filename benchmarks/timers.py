"""Timers on time: how late a ``time.wait`` and a step retry's backoff come, against ``workflow.sleep``.

Pair 8 of ``benchmarks/run.py``; also runnable alone, on a fresh embedded stack, to compare
server settings (``--dc KEY=VALUE`` adds dynamic config to the embedded dev server's own)::

    python benchmarks/timers.py --samples 20
    python benchmarks/timers.py --samples 20 --no-default-dc   # the dev server's own defaults
    python benchmarks/timers.py --samples 0 --burst 100        # 100 timers firing together

Every figure is a median in milliseconds, read from the workflow histories and step rows:

* ``*_late_ms`` of a wait: the step's (or the hand-written workflow's) time from before the wait
  to after it, in workflow time (``workflow.now()``, the start of the workflow task), minus the
  requested duration;
* ``*_server_late_ms``: TimerFired − TimerStarted − the timer's duration, the server's part;
* ``retry_backoff_10ms_wait_ms``: from the failed attempt's activity closing to the next attempt's
  activity being scheduled, a 10 ms backoff (the baseline: a hand-written workflow that sleeps
  10 ms between two activity calls). ``core.fail`` is a short action, so its attempts are local
  activities: then from the first attempt's marker to the second's (each recorded when its
  workflow task completes: the timer and one workflow task lie between them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import ACTIVITIES, BASELINE_QUEUE, WORKFLOWS, baseline_runner

TENANT = "bench"

#: The definitions measured: a time.wait of each duration, and a step that fails once and is
#: retried after ``backoffMs: 10``.
TIMER_DEFINITIONS: list[dict[str, Any]] = [
    {"id": "bench-wait-100ms", "version": 1, "name": "time.wait 100 ms", "steps": [{"id": "w", "type": "time.wait", "config": {"durationMs": 100}}]},
    {"id": "bench-wait-1s", "version": 1, "name": "time.wait 1 s", "steps": [{"id": "w", "type": "time.wait", "config": {"durationMs": 1000}}]},
    {"id": "bench-retry-10ms", "version": 1, "name": "retry after 10 ms", "steps": [
        {"id": "r", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"category": "TransientError", "succeedOnAttempt": 2}},
         "retry": {"maxAttempts": 2, "backoffMs": 10}}]},
]




def _t(event: Any) -> float:
    return float(event.event_time.ToDatetime().timestamp() * 1000)


async def _history(client: Client, workflow_id: str) -> list[Any]:
    return [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]


def server_late_ms(events: list[Any]) -> float:
    """TimerFired − TimerStarted − the timer's duration (the first timer of the history)."""
    started: dict[int, tuple[float, float]] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            started[event.event_id] = (_t(event), attrs.start_to_fire_timeout.ToMilliseconds())
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            at, ms = started[event.timer_fired_event_attributes.started_event_id]
            return _t(event) - at - ms
    return float("nan")


def retry_wait_ms(events: list[Any]) -> float:
    """From the first activity's close (failed, or completed with the action's error) to the next activity scheduled.

    The interpreter's own activities (a projection flush, opening a wait) are not counted: only
    the action activity, named in the scheduled event.
    """
    closed: float | None = None
    names: dict[int, str] = {}
    closes = (EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    local = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
             and b"workflowRuntimeV2Action" in e.marker_recorded_event_attributes.details["data"].payloads[0].data]
    if len(local) >= 2:
        # a short action's attempts are local activities, each recorded when its workflow task
        # completes: from the first attempt's to the second's (the timer and one task between)
        return _t(local[1]) - _t(local[0])
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            names[event.event_id] = name
            if closed is not None and name == _action_name(names):
                return _t(event) - closed
        elif event.event_type in closes and closed is None:
            attrs = event.activity_task_completed_event_attributes if event.event_type == closes[0] else event.activity_task_failed_event_attributes
            if names.get(attrs.scheduled_event_id) == _action_name(names):
                closed = _t(event)
    return float("nan")


def _action_name(names: dict[int, str]) -> str:
    """The activity the step retries: the first one scheduled."""
    return next(iter(names.values()))


async def measure(client: Client, launch: Any, step_ms: Any, samples: int) -> dict[str, float]:
    """The figures of one stack, ``samples`` runs of each kind, one run at a time.

    ``launch(definition_id) -> (temporal workflow id, run id)`` starts an authored run;
    ``step_ms(run_id) -> float`` is its first step's duration in ms.
    """
    values: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        values.setdefault(key, []).append(value)

    for _ in range(samples):
        for ms, label in ((100, "100ms"), (1000, "1s")):
            wid, run_id = await launch(f"bench-wait-{label}")
            await client.get_workflow_handle(wid).result()
            add(f"timer.time_wait_{label}_late_ms", await step_ms(run_id) - ms)
            add(f"timer.time_wait_{label}_server_late_ms", server_late_ms(await _history(client, wid)))
            handle = await client.start_workflow("benchSleep", ms, id=f"sleep-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE)
            add(f"timer.workflow_sleep_{label}_late_ms", float(await handle.result()) - ms)
            add(f"timer.workflow_sleep_{label}_server_late_ms", server_late_ms(await _history(client, handle.id)))
        wid, _ = await launch("bench-retry-10ms")
        await client.get_workflow_handle(wid).result()
        add("timer.retry_backoff_10ms_wait_ms", retry_wait_ms(await _history(client, wid)))
        handle = await client.start_workflow("benchRetryAfterSleep", 10, id=f"retry-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE)
        await handle.result()
        add("timer.baseline_retry_sleep_10ms_wait_ms", retry_wait_ms(await _history(client, handle.id)))
    return {key: statistics.median(v) for key, v in values.items()}


async def burst(client: Client, n: int, reps: int = 3) -> dict[str, float]:
    """``n`` hand-written ``workflow.sleep``s of 100–322 ms started at once, ``reps`` times: how late at the median and at worst."""
    late: list[float] = []
    server: list[float] = []
    for _ in range(reps):
        durations = [100 + (i % 7) * 37 for i in range(n)]
        handles = await asyncio.gather(*(client.start_workflow("benchSleep", ms, id=f"burst-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE) for ms in durations))
        late += [float(await h.result()) - ms for h, ms in zip(handles, durations, strict=True)]
        server += [server_late_ms(await _history(client, h.id)) for h in handles]
    return {f"burst_{n}_late_p50_ms": statistics.median(late), f"burst_{n}_late_max_ms": max(late),
            f"burst_{n}_server_late_p50_ms": statistics.median(server), f"burst_{n}_server_late_max_ms": max(server)}


async def _standalone(samples: int, extra_dc: list[str], default_dc: bool, burst_n: int) -> dict[str, Any]:
    from sqlalchemy import select

    import runtime_bootstrap._devserver as devserver
    from runtime_bootstrap._stack import open_stack
    from runtime_bootstrap.settings import AppSettings
    from runtime_core.actions import ActionRegistry
    from runtime_core.persistence import StepRow
    from runtime_core.publishing import publish_definitions

    devserver.DYNAMIC_CONFIG = (*(devserver.DYNAMIC_CONFIG if default_dc else ()), *extra_dc)  # type: ignore[misc]
    registry = ActionRegistry.default()
    settings = AppSettings.from_env({k: v for k, v in os.environ.items() if not k.startswith("WFR_")})
    async with open_stack(settings, registry=registry) as stack:
        outcome = await publish_definitions(stack.database, registry, TENANT, TIMER_DEFINITIONS)
        assert outcome.published, outcome.errors

        async def launch(definition_id: str) -> tuple[str, str]:
            launched = await stack.launcher.launch(TENANT, definition_id, {})
            return launched.temporal_workflow_id, launched.run_id

        async def step_ms(run_id: str) -> float:
            async with stack.database.sessions() as session:
                return float((await session.execute(select(StepRow.duration_ms).where(StepRow.run_id == run_id, StepRow.seq == 1))).scalar_one())

        async with Worker(stack.client, task_queue=BASELINE_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES, workflow_runner=baseline_runner()):
            await measure(stack.client, launch, step_ms, 1)  # warm-up: first sandbox, imports
            started = time.perf_counter()
            figures = await measure(stack.client, launch, step_ms, samples) if samples else {}
            if burst_n:
                figures.update(await burst(stack.client, burst_n))
    return {"dynamic_config": list(devserver.DYNAMIC_CONFIG), "samples": samples, "seconds": round(time.perf_counter() - started, 1), "metrics": figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--dc", action="append", default=[], help="extra --dynamic-config-value KEY=VALUE for the embedded server")
    parser.add_argument("--burst", type=int, default=0, help="also: this many workflow.sleep timers at once (3 times)")
    parser.add_argument("--no-default-dc", action="store_true", help="without the runtime's own dynamic config")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_standalone(args.samples, args.dc, not args.no_default_dc, args.burst)), indent=2, sort_keys=True))
