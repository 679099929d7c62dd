"""A deployment under test: the processes of ``compose/`` started the way compose starts them.

A Temporal dev server with a persistent database file, a private PostgreSQL cluster, the API
(``wfr serve``), two ``workflow-worker`` processes and one ``domain-worker``, each configured only
by its environment. 300 runs launched through the API mix ``data.increment`` actions, timers,
event waits (their events sent through the API) and human tasks (answered through the API),
the way users drive them: an event is sent once its run waits for it, a task is answered once it
is open. Half-way through the launches one workflow-worker is killed with SIGKILL; a little later
the Temporal server is killed and started again, and then the lost worker is restarted (an
orchestrator's restart policy). Launches, events and answers that meet the outage are retried
with the same idempotency key or event id, as a client would.

Then: every run SUCCEEDED; every counter is exact; every event was delivered exactly once to
its run; every task was completed once; the read model agrees with Temporal with no row left
open; every process is alive and ready; and the metrics endpoints report what the database holds
(the workers keep their counts in ``PROMETHEUS_MULTIPROC_DIR``, one directory per worker slot, so
the killed worker's counts survive it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from runtime_bootstrap._devserver import free_port
from runtime_core.persistence import ActionInvocation, Database, EventDelivery, RunRow, TaskRow, WaitRow

from .harness import (
    BIN,
    PostgresCluster,
    TemporalServer,
    WorkerProcess,
    assert_read_model_matches_temporal,
    data_store,
    domain_worker_process,
    ledger_duplicates,
    ledger_rows_by_run,
    run_rows,
    worker_env,
)

RUNS = 300
#: Launches a second through the API (traffic, not a burst: see ``harness.launch_many``).
PER_SECOND = 12
KINDS = ("timer", "event", "task", "all")
SHARED_KEY = "all"
#: Every run must have ended this long after the last fault.
RECOVERY_LIMIT_S = 240


def _if(step_id: str, kinds: list[str], then: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": step_id, "type": "control.if", "condition": {"$expr": f"payload.kind in {json.dumps(kinds)}"}, "then": then}


DEFINITION: dict[str, Any] = {
    "id": "deploy", "version": 1, "name": "deployment mix",
    "steps": [
        {"id": "inc1", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": {"$expr": "payload.key"}}}},
        _if("if-timer", ["timer", "all"], [{"id": "nap", "type": "time.wait", "config": {"durationMs": 800}}]),
        _if("if-event", ["event", "all"], [{"id": "w", "type": "event.wait", "config": {
            "eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event.n"}}}}]),
        _if("if-task", ["task", "all"], [{"id": "ask", "type": "human.task", "config": {
            "taskType": "approve", "title": {"$expr": "'Approve ' & payload.key"},
            "formSchema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}]),
        {"id": "inc2", "type": "action.call", "config": {
            "actionId": "data.increment", "version": 1, "inputMapping": {"key": SHARED_KEY}, "saveAs": "vars.last"}},
    ],
}


def _payload(i: int) -> dict[str, Any]:
    return {"key": f"k{i}", "kind": KINDS[i % len(KINDS)], "n": i}


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "wfr"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"wfr {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


async def _retrying(http: httpx.AsyncClient, method: str, url: str, deadline: float, accept: tuple[int, ...], **kwargs: Any) -> httpx.Response:
    """Send until one of ``accept`` answers; a 503, a 5xx or a broken connection is retried (the same request, the same key)."""
    last = ""
    while time.monotonic() < deadline:
        try:
            response = await http.request(method, url, **kwargs)
        except httpx.TransportError as err:
            last = f"{type(err).__name__}: {err}"
        else:
            if response.status_code in accept:
                return response
            if response.status_code < 500:
                raise AssertionError(f"{method} {url} answered {response.status_code}: {response.text[:500]}")
            last = f"{response.status_code}: {response.text[:300]}"
        await asyncio.sleep(1)
    raise AssertionError(f"{method} {url} never succeeded; last: {last}")


async def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def test_deployment_survives_a_worker_kill_and_a_temporal_restart(
    postgres_cluster: PostgresCluster, temporal: TemporalServer, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """300 mixed runs through the API of a multi-process deployment, with kill -9 of a worker and a Temporal restart."""
    tenant = f"dep-{uuid.uuid4().hex[:8]}"
    db_url = await postgres_cluster.create_database("deploy")
    base = worker_env(temporal, db_url, WFR_HOUSEKEEPING_INTERVAL_SECONDS="5", WFR_SHUTDOWN_GRACE_SECONDS="5")
    _cli(base, "db", "upgrade")
    token = _cli(base, "tokens", "create", "--tenant", tenant, "--role", "admin", "--name", "deploy-test").strip().splitlines()[-1]

    api_port = free_port()
    ports = {name: free_port() for name in ("api", "w1", "w2", "domain")}
    health = {name: free_port() for name in ("w1", "w2", "domain")}
    api = WorkerProcess("api", {**base, "WFR_METRICS_PORT": str(ports["api"])}, tmp_path / "api.log",
                        command=[str(BIN / "wfr"), "serve", "--port", str(api_port)], ready="API:")
    workers = {
        name: WorkerProcess(name, {**base, "WFR_METRICS_PORT": str(ports[name]), "WFR_HEALTH_PORT": str(health[name]),
                                   "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics" / name)}, tmp_path / f"{name}.log")
        for name in ("w1", "w2")
    }
    domain = domain_worker_process("domain", {**base, "WFR_METRICS_PORT": str(ports["domain"]), "WFR_HEALTH_PORT": str(health["domain"])}, tmp_path / "domain.log")
    processes = [api, *workers.values(), domain]
    database = Database(db_url)
    try:
        for process in processes:
            await process.start()
        run_ids = await _run_the_load(api_port, token, tenant, workers, temporal, database, figures)
        await _check(database, temporal, tenant, run_ids, processes, ports, health, figures)
    finally:
        for process in processes:
            await process.stop(timeout=20)
        await database.dispose()


async def _run_the_load(
    api_port: int, token: str, tenant: str, workers: dict[str, WorkerProcess], temporal: TemporalServer, database: Database, figures: dict[str, Any]
) -> list[str]:
    """Launch the runs, answer their waits and inject the faults until every run has ended; the run ids in launch order."""
    payloads = [_payload(i) for i in range(RUNS)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        publish = await http.post("/definitions", json={"definitions": [DEFINITION]})
        assert publish.status_code == 201, publish.text
        began = time.monotonic()
        deadline = began + 600
        run_ids: dict[int, str] = {}
        launched = asyncio.Event()
        half_way = asyncio.Event()
        sent: set[str] = set()
        answered: set[str] = set()
        retries = {"launch": 0}
        bound = asyncio.Semaphore(8)

        async def launch(i: int) -> None:
            await asyncio.sleep(max(0.0, began + i / PER_SECOND - time.monotonic()))
            async with bound:
                tries = time.monotonic()
                response = await _retrying(http, "POST", "/runs", deadline, (200, 201), json={"workflowId": "deploy", "payload": payloads[i]},
                                           headers={"Idempotency-Key": f"deploy-{i}"})
                if time.monotonic() - tries > 1:
                    retries["launch"] += 1
            run_ids[i] = response.json()["runId"]
            if len(run_ids) >= RUNS // 2:
                half_way.set()

        async def launch_all() -> None:
            await asyncio.gather(*(launch(i) for i in range(RUNS)))
            launched.set()

        async def respond() -> None:
            """Send each waiting run its event and answer each open task, like the users of the runs."""
            by_key = {p["key"]: p for p in payloads}
            while True:
                async with database.sessions() as session:
                    waiting = (await session.execute(select(WaitRow.correlation_key).where(
                        WaitRow.tenant == tenant, WaitRow.wait_type == "event", WaitRow.status == "WAITING"))).scalars().all()
                    tasks = (await session.execute(select(TaskRow.task_id).where(TaskRow.tenant == tenant, TaskRow.status == "PENDING"))).scalars().all()
                for key in [k for k in waiting if k not in sent]:
                    body = {"eventName": "go", "correlationKey": key, "eventId": f"go-{key}", "payload": {"n": by_key[key]["n"]}}
                    await _retrying(http, "POST", "/events", deadline, (202,), json=body)
                    sent.add(key)
                for task_id in [t for t in tasks if t not in answered]:
                    # 409: an earlier answer whose response the outage swallowed already completed it
                    await _retrying(http, "POST", f"/tasks/{task_id}/complete", deadline, (200, 409), json={"response": {"ok": True}})
                    answered.add(task_id)
                await asyncio.sleep(0.3)

        async def faults() -> None:
            await half_way.wait()
            async with database.sessions() as session:
                figures["runningAtWorkerKill"] = (await session.execute(select(func.count()).select_from(RunRow).where(
                    RunRow.tenant == tenant, RunRow.status.in_(("RUNNING", "WAITING"))))).scalar_one()
            await workers["w1"].kill()
            figures["workerKilledAtSecond"] = round(time.monotonic() - began, 1)
            await asyncio.sleep(5)
            down = time.monotonic()
            await temporal.kill()
            await asyncio.sleep(2)
            figures["temporalRestartSeconds"] = round(await temporal.start(), 1)
            figures["temporalDownSeconds"] = round(time.monotonic() - down, 1)
            figures["workerRestartSeconds"] = round(await workers["w1"].start(), 1)
            figures["faultsOverAtSecond"] = round(time.monotonic() - began, 1)

        responder = asyncio.create_task(respond())
        try:
            await asyncio.gather(launch_all(), faults())

            async def all_ended() -> bool:
                async with database.sessions() as session:
                    open_runs = (await session.execute(select(func.count()).select_from(RunRow).where(
                        RunRow.tenant == tenant, RunRow.status.in_(("RUNNING", "WAITING"))))).scalar_one()
                return open_runs == 0

            over = time.monotonic()
            await _until(all_ended, RECOVERY_LIMIT_S, f"runs still open {RECOVERY_LIMIT_S}s after the faults")
            figures["lastRunEndedSecondsAfterFaults"] = round(time.monotonic() - over, 1)

            async def deliveries_settled() -> bool:
                # a delivery whose dispatcher was killed between its signal and its record stays
                # PENDING until its lease (60 s) ends; then another dispatcher records its outcome
                async with database.sessions() as session:
                    pending = (await session.execute(select(func.count()).select_from(EventDelivery).where(
                        EventDelivery.tenant == tenant, EventDelivery.status == "PENDING"))).scalar_one()
                return pending == 0

            settling = time.monotonic()
            await _until(deliveries_settled, 120, "deliveries still PENDING")
            figures["deliveriesSettledSecondsAfterLastRun"] = round(time.monotonic() - settling, 1)
        finally:
            responder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await responder
        figures.update(runs=RUNS, eventsSent=len(sent), tasksAnswered=len(answered), launchesRetried=retries["launch"], seconds=round(time.monotonic() - began, 1))
        assert len(run_ids) == RUNS
        return [run_ids[i] for i in range(RUNS)]


async def _check(
    database: Database, temporal: TemporalServer, tenant: str, run_ids: list[str], processes: list[WorkerProcess], ports: dict[str, int], health: dict[str, int],
    figures: dict[str, Any],
) -> None:
    """Every assertion of the test, each listing every problem it found."""
    payloads = [_payload(i) for i in range(RUNS)]
    rows = await run_rows(database, run_ids)
    store = await data_store(database, tenant)
    ledger = await ledger_rows_by_run(database, tenant)
    duplicates = await ledger_duplicates(database, tenant)
    async with database.sessions() as session:
        deliveries = (await session.execute(select(EventDelivery.event_id, EventDelivery.run_id, EventDelivery.status).where(EventDelivery.tenant == tenant))).all()
        tasks = (await session.execute(select(TaskRow.run_id, TaskRow.status).where(TaskRow.tenant == tenant))).all()
        timers = (await session.execute(select(WaitRow.run_id, WaitRow.status).where(WaitRow.tenant == tenant, WaitRow.wait_type == "time"))).all()
        ledger_total = (await session.execute(select(func.count()).select_from(ActionInvocation).where(ActionInvocation.tenant == tenant))).scalar_one()
    statuses: dict[str, int] = {}
    for row in rows.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    figures.update(statuses=statuses, ledgerRows=ledger_total, ledgerDuplicates=len(duplicates), deliveries=len(deliveries))
    deliveries_by_event: dict[str, list[tuple[str | None, str]]] = {}
    for event_id, run_id, status in deliveries:
        deliveries_by_event.setdefault(event_id, []).append((run_id, status))
    tasks_by_run: dict[str, list[str]] = {}
    for run_id, status in tasks:
        tasks_by_run.setdefault(run_id, []).append(status)
    timers_by_run: dict[str, list[str]] = {}
    for run_id, status in timers:
        timers_by_run.setdefault(run_id, []).append(status)

    problems: list[str] = []
    for run_id, payload in zip(run_ids, payloads, strict=True):
        row = rows.get(run_id)
        if row is None or row["status"] != "SUCCEEDED":
            problems.append(f"{run_id} ({payload['kind']}): {row and row['status']} {str((row or {}).get('error'))[:300]}")
            continue
        scope = (row["result"] or {}).get("vars", {})
        if store.get(payload["key"]) != 1:
            problems.append(f"{run_id}: its key {payload['key']} holds {store.get(payload['key'])!r}, not 1")
        if ledger.get(run_id) != {"data.increment": 2}:
            problems.append(f"{run_id}: ledger rows {ledger.get(run_id)}")
        kind = payload["kind"]
        event = deliveries_by_event.get(f"go-{payload['key']}", [])
        if kind in ("event", "all"):
            if event != [(run_id, "DELIVERED")]:
                problems.append(f"{run_id}: deliveries of its event {event} (want exactly one, DELIVERED to it)")
            if scope.get("got") != payload["n"]:
                problems.append(f"{run_id}: vars.got is {scope.get('got')!r}, not {payload['n']}")
        elif event:
            problems.append(f"{run_id}: a {kind} run was sent an event: {event}")
        want_tasks = ["COMPLETED"] if kind in ("task", "all") else []
        if tasks_by_run.get(run_id, []) != want_tasks:
            problems.append(f"{run_id}: tasks {tasks_by_run.get(run_id)} (want {want_tasks})")
        want_timers = ["RESOLVED"] if kind in ("timer", "all") else []
        if timers_by_run.get(run_id, []) != want_timers:
            problems.append(f"{run_id}: timers {timers_by_run.get(run_id)} (want {want_timers})")
    if store.get(SHARED_KEY) != RUNS:
        problems.append(f"shared key holds {store.get(SHARED_KEY)!r}, not {RUNS}")
    if duplicates:
        problems.append(f"ledger duplicates: {duplicates}")
    assert not problems, f"{len(problems)} problems with {RUNS} runs ({statuses}):\n" + "\n".join(problems[:40])

    client = await temporal.client()
    await assert_read_model_matches_temporal(database, client, run_ids)

    dead = [p.name for p in processes if not p.alive]
    assert not dead, f"processes died: {dead}\n" + "\n".join(f"--- {p.name}\n{p.log_text()[-2000:]}" for p in processes if p.name in dead)
    async with httpx.AsyncClient(timeout=10) as http:
        for name, port in health.items():
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, f"{name} /readyz: {ready.status_code} {ready.text}"
        delivered = sum(1 for d in deliveries if d.status == "DELIVERED")
        want = {"runsStarted": RUNS, "runsSucceeded": RUNS, "actionsSucceeded": ledger_total, "deliveriesDelivered": delivered, "openWaits": 0}

        async def scraped() -> dict[str, float]:
            texts = {name: (await http.get(f"http://127.0.0.1:{port}/metrics")).text for name, port in ports.items()}
            workers = [_samples(texts[name]) for name in ("w1", "w2")]
            api = _samples(texts["api"])
            return {
                "runsStarted": _total(api, "wfr_runs_started_total", workflow="deploy"),
                "runsSucceeded": sum(_total(w, "wfr_runs_ended_total", workflow="deploy", status="SUCCEEDED") for w in workers),
                "actionsSucceeded": sum(_total(w, "wfr_action_attempts_total", action="data.increment", outcome="succeeded") for w in workers),
                "deliveriesDelivered": sum(_total(w, "wfr_event_deliveries_total", status="delivered") for w in workers),
                "openWaits": max(_total(s, "wfr_open_waits") for s in (api, *workers)),
            }

        async def agrees() -> dict[str, float] | None:
            found = await scraped()
            return found if found == want else None

        try:
            # the workers refresh their read-model gauges every 15 s
            await _until(agrees, 40, "metrics never equalled the database")
        except AssertionError:
            raise AssertionError(f"the metrics endpoints report {await scraped()}, the database {want}") from None
        figures["metrics"] = want
