"""The load the fault tests put on the runtime, and the exact outcome it must have."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from runtime_core.launcher import Launcher
from runtime_core.persistence import Database

from .harness import (
    WorkerProcess,
    assert_read_model_matches_temporal,
    data_store,
    launch_many,
    ledger_duplicates,
    ledger_rows_by_run,
    run_rows,
    step_rows,
    wait_for_runs,
    wait_for_runs_in_flight,
)

#: Steps of a load run: two increments of its own key, one of the shared key, two naps between.
LOAD_STEPS = ("inc1", "nap1", "inc2", "nap2", "inc3")
NAPS = ("nap1", "nap2")
SHARED_KEY = "all"
#: What a run's error may never show: the runtime's SQL and its database driver's complaints.
SQL_TEXT = re.compile(r"OperationalError|DBAPIError|InterfaceError|database is locked|sqlalche\.me|\bSELECT\b|\bINSERT\b|\bUPDATE\b|\[SQL|asyncpg|aiosqlite|sqlite3", re.IGNORECASE)


def _action(step_id: str, action_id: str, inputs: dict[str, Any], save_as: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"actionId": action_id, "version": 1, "inputMapping": inputs}
    if save_as:
        config["saveAs"] = save_as
    return {"id": step_id, "type": "action.call", "config": config}


def load_definition(workflow_id: str = "load") -> dict[str, Any]:
    """``data.increment`` / ``core.delay`` steps: payload ``{"key": …, "ms": …}``."""
    own = {"key": {"$expr": "payload.key"}}
    nap = {"ms": {"$expr": "payload.ms"}}
    return {
        "id": workflow_id, "version": 1, "name": "reliability load",
        "steps": [
            _action("inc1", "data.increment", own),
            _action("nap1", "core.delay", nap),
            _action("inc2", "data.increment", {"key": SHARED_KEY}),
            _action("nap2", "core.delay", nap),
            _action("inc3", "data.increment", own, "vars.last"),
        ],
    }


def load_payloads(count: int, ms: int) -> list[dict[str, Any]]:
    """One payload per run, each with its own key."""
    return [{"key": f"k{i}", "ms": ms} for i in range(count)]


def sql_in_errors(rows: dict[str, dict[str, Any]], steps: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Runs whose error, or a step's error, shows SQL or a driver error."""
    leaks = []
    for run_id, row in rows.items():
        texts = [str(row["error"])] if row["error"] else []
        texts += [str(s["error"]) for s in steps.get(run_id, []) if s["error"]]
        if any(SQL_TEXT.search(t) for t in texts):
            leaks.append(run_id)
    return leaks


async def check_load(database: Database, tenant: str, run_ids: list[str], payloads: list[dict[str, Any]], figures: dict[str, Any]) -> None:
    """Every load run SUCCEEDED with exact counters and ledger.

    What was found goes into ``figures`` first; then one assertion names every problem at once.
    """
    rows = await run_rows(database, run_ids)
    steps = await step_rows(database, run_ids)
    ledger = await ledger_rows_by_run(database, tenant)
    duplicates = await ledger_duplicates(database, tenant)
    store = await data_store(database, tenant)
    statuses: dict[str, int] = {}
    for row in rows.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    problems: list[str] = []
    for run_id, payload in zip(run_ids, payloads, strict=True):
        row = rows.get(run_id)
        if row is None or row["status"] != "SUCCEEDED":
            error = (row or {}).get("error") or {}
            problems.append(f"{run_id}: {row and row['status']} {str(error.get('message', ''))[:200]}")
            continue
        if store.get(payload["key"]) != 2:
            problems.append(f"{run_id}: its key {payload['key']} holds {store.get(payload['key'])!r}, not 2")
        if (row["result"] or {}).get("vars", {}).get("last") != {"key": payload["key"], "value": 2}:
            problems.append(f"{run_id}: vars.last is {(row['result'] or {}).get('vars', {}).get('last')!r}")
        if ledger.get(run_id) != {"data.increment": 3, "core.delay": 2}:
            problems.append(f"{run_id}: ledger rows {ledger.get(run_id)}")
        shape = [(s["stepId"], s["status"], s["attempts"]) for s in steps[run_id]]
        if shape != [(step, "SUCCEEDED", 1) for step in LOAD_STEPS]:
            problems.append(f"{run_id}: steps {shape} (a lost worker or a database outage is not an authored attempt)")
    if store.get(SHARED_KEY) != len(run_ids):
        problems.append(f"shared key {SHARED_KEY!r} holds {store.get(SHARED_KEY)!r}, not {len(run_ids)}")
    if duplicates:
        problems.append(f"ledger duplicates: {duplicates}")
    leaks = sql_in_errors(rows, steps)
    if leaks:
        problems.append(f"{len(leaks)} runs show SQL or a driver error in their errors, e.g. {rows[leaks[0]]['error'] or steps[leaks[0]]}")
    figures.update(statuses=statuses, ledgerDuplicates=len(duplicates), sharedCounter=store.get(SHARED_KEY), runsWithSqlInErrors=len(leaks))
    assert not problems, f"{len(problems)} problems with {len(run_ids)} load runs ({statuses}):\n" + "\n".join(problems[:40])


#: Runs of a database-fault test, and the naps of each (short: the fault, not the load, is the test).
FAULT_RUNS = 60
FAULT_NAP_MS = 1000
#: How long after the fault is over every run must have ended.
FAULT_RECOVERY_LIMIT_S = 90
#: Log records at WARNING or above allowed per run (an expected retry is one line, never a traceback).
WARNING_LINES_PER_RUN = 10


async def load_through_fault(
    database: Database, client: Client, worker: WorkerProcess, tenant: str, fault: Callable[[], Awaitable[dict[str, Any]]], figures: dict[str, Any]
) -> None:
    """Launch the load, inject ``fault`` while runs are inside their actions, then check everything.

    ``fault`` returns figures of its own (what it did, how long). Every run must end SUCCEEDED
    within :data:`FAULT_RECOVERY_LIMIT_S` of the fault's end with exact counters, no SQL in any
    error, the read model equal to Temporal's view, the worker alive, and its log free of
    tracebacks with at most :data:`WARNING_LINES_PER_RUN` warnings per run.
    """
    payloads = load_payloads(FAULT_RUNS, FAULT_NAP_MS)
    run_ids = [r.run_id for r in await launch_many(Launcher(client, database), tenant, "load", payloads)]
    in_flight = await wait_for_runs_in_flight(database, tenant, "inc1", FAULT_RUNS // 3, timeout=120)
    began = time.monotonic()
    figures.update(await fault())
    over = time.monotonic()
    closed, unfinished = await wait_for_runs(client, run_ids, timeout=FAULT_RECOVERY_LIMIT_S)
    tracebacks, warnings = worker.tracebacks(), worker.warning_lines()
    figures.update(
        runs=FAULT_RUNS, runsMidActionAtFault=in_flight, faultSeconds=round(over - began, 1),
        lastRunEndedSecondsAfterFault=round(max(closed.values()) - over, 1) if closed and not unfinished else None,
        unfinishedAfterSeconds={"seconds": FAULT_RECOVERY_LIMIT_S, "runs": len(unfinished)},
        workerAlive=worker.alive, workerTracebacks=tracebacks, workerWarningLines=warnings,
    )
    assert worker.alive, f"the worker died:\n{worker.log_text()[-3000:]}"
    assert not unfinished, f"{len(unfinished)} of {FAULT_RUNS} runs still running {FAULT_RECOVERY_LIMIT_S}s after the fault ended"
    await check_load(database, tenant, run_ids, payloads, figures)
    await assert_read_model_matches_temporal(database, client, run_ids)
    assert tracebacks == 0, f"the worker logged {tracebacks} tracebacks for an expected, retried fault (an expected retry is one log line)"
    assert warnings <= WARNING_LINES_PER_RUN * FAULT_RUNS, f"the worker logged {warnings} warnings for {FAULT_RUNS} runs (at most {WARNING_LINES_PER_RUN} a run)"
