"""Pair 9: action throughput on PostgreSQL with two worker processes a side (issue 15, part 2).

How a production deployment scales: a private PostgreSQL cluster (initdb into a temporary
directory; the server binaries must be installed), one Temporal dev server, and

* ours: two ``workflow-worker`` processes (console script, configured by ``WFR_*`` only) on the
  PostgreSQL database, running ``n`` runs of 20 ``core.echo`` steps launched from this process,
  first as short actions (local activities, the default), then every action a regular activity;
* the baseline: two processes running the hand-written ``benchSequential`` workflow
  (``benchmarks/baseline.py``) on the same server, ``n`` workflows of 20 activities, then the
  same with local activities (``benchSequentialLocal``).

Both sides start from idle processes that have already polled; the figure is steps per second
from the first launch to the last completion. Runnable alone (``python postgres_pair.py --runs
50``) or as pair 9 of ``run.py`` (full runs; ``--only 9``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from baseline import BASELINE_QUEUE  # noqa: E402

BIN = Path(sys.executable).parent
NAMESPACE = "bench-postgres"
TENANT = "bench"
ACTIONS = {"id": "bench-actions", "version": 1, "name": "20 actions", "steps": [
    {"id": f"a{i}", "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"i": f"a{i}"}}} for i in range(20)]}
#: A process of the baseline side: a worker of the hand-written workflows until SIGTERM.
_BASELINE_WORKER = """
import asyncio, signal, sys
sys.path.insert(0, sys.argv[3])
from temporalio.client import Client
from temporalio.worker import Worker
from baseline import ACTIVITIES, BASELINE_QUEUE, WORKFLOWS, baseline_runner
from runtime_core.worker import temporal_runtime

async def main():
    client = await Client.connect(sys.argv[1], namespace=sys.argv[2], runtime=temporal_runtime())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=BASELINE_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES, workflow_runner=baseline_runner()):
        print("baseline worker polling", flush=True)
        await stop.wait()

asyncio.run(main())
"""


def _start(command: list[str], env: dict[str, str], log: Path, ready: str, timeout: float = 90) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{command[0]} never logged {ready!r}:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def measure(runs: int) -> dict[str, float]:
    """Both sides, ``runs`` workflows of 20 steps each; the figures (``postgres.*``)."""
    from temporalio.client import Client

    from runtime_bootstrap._devserver import DevServer, free_port
    from runtime_core.actions import ActionRegistry
    from runtime_core.contract import RunOptions
    from runtime_core.launcher import Launcher
    from runtime_core.persistence import Database, upgrade
    from runtime_core.publishing import publish_definitions
    from runtime_core.worker import temporal_runtime
    from tests.reliability.harness import PostgresCluster, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb): install postgresql or set WFR_TEST_PG_BINDIR")
    cluster = PostgresCluster(bindir)
    server = DevServer(port=free_port(), namespaces=(NAMESPACE,))
    work = Path(tempfile.mkdtemp(prefix="wfr-bench-pg."))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        cluster.init()
        cluster.start()
        url = await cluster.create_database("bench")
        await server.start(timeout=120)
        database = Database(url)
        await upgrade(database)
        registry = ActionRegistry.default()
        assert (await publish_definitions(database, registry, TENANT, [ACTIONS])).published
        client = await Client.connect(server.address, namespace=NAMESPACE, runtime=temporal_runtime())
        env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
        env.update(WFR_TEMPORAL_ADDRESS=server.address, WFR_TEMPORAL_NAMESPACE=NAMESPACE, WFR_DATABASE_URL=url, WFR_LOG_LEVEL="WARNING")

        # ours: two workflow-worker processes
        for i in range(2):
            processes.append(_start([str(BIN / "workflow-worker")], {**env, "WFR_LOG_LEVEL": "INFO"}, work / f"worker{i}.log", "polling task queue workflow-runtime-v2"))
        launcher = Launcher(client, database, registry=registry)
        await _warm_ours(client, launcher)
        began = time.perf_counter()
        launched = await asyncio.gather(*(launcher.launch(TENANT, "bench-actions", {}) for _ in range(runs)))
        await asyncio.gather(*(client.get_workflow_handle(r.temporal_workflow_id).result() for r in launched))
        ours = runs * 20 / (time.perf_counter() - began)
        regular = Launcher(client, database, RunOptions())  # every action a regular activity
        began = time.perf_counter()
        launched = await asyncio.gather(*(regular.launch(TENANT, "bench-actions", {}) for _ in range(runs)))
        await asyncio.gather(*(client.get_workflow_handle(r.temporal_workflow_id).result() for r in launched))
        ours_regular = runs * 20 / (time.perf_counter() - began)
        _stop(processes)
        processes.clear()

        # the baseline: two processes of hand-written workflows
        for i in range(2):
            processes.append(_start([sys.executable, "-c", _BASELINE_WORKER, server.address, NAMESPACE, str(HERE)], env, work / f"baseline{i}.log", "baseline worker polling"))
        figures = {"postgres.ours_steps_per_s": ours, "postgres.ours_regular_steps_per_s": ours_regular}
        for workflow_type, key in (("benchSequential", "postgres.baseline_steps_per_s"), ("benchSequentialLocal", "postgres.baseline_local_steps_per_s")):
            await client.execute_workflow(workflow_type, 1, id=f"warm-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE)
            began = time.perf_counter()
            handles = await asyncio.gather(*(client.start_workflow(workflow_type, 20, id=f"seq-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE) for _ in range(runs)))
            await asyncio.gather(*(h.result() for h in handles))
            figures[key] = runs * 20 / (time.perf_counter() - began)
        figures["postgres.ratio"] = ours / figures["postgres.baseline_steps_per_s"]
        figures["postgres.ratio_vs_local_baseline"] = ours / figures["postgres.baseline_local_steps_per_s"]
        figures["postgres.ratio_regular"] = ours_regular / figures["postgres.baseline_steps_per_s"]
        await database.dispose()
        return figures
    finally:
        _stop(processes)
        await server.stop()
        cluster.destroy()


async def _warm_ours(client: Any, launcher: Any) -> None:
    """One run per worker process first: each builds its sandbox and connection pool."""
    warm = await asyncio.gather(*(launcher.launch(TENANT, "bench-actions", {}) for _ in range(4)))
    await asyncio.gather(*(client.get_workflow_handle(r.temporal_workflow_id).result() for r in warm))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    print(json.dumps(asyncio.run(measure(parser.parse_args().runs)), indent=2))
