"""The runtime's Prometheus metrics: one registry per process, served on ``WFR_METRICS_PORT``.

Every metric is recorded where the work happens, never in workflow code (which must stay
deterministic): runs started by the launcher, runs ended and step durations by the activities
that write the read model, action attempts by the action activity, deliveries by the event
dispatcher, stuck runs by the housekeeping diagnoses, open waits read from the read model.

Label values are bounded: statuses, step types, wait types, delivery kinds and stuck-run reasons
are fixed sets; workflow ids, action ids and error categories are chosen by authors, bounded per
deployment, and capped: past :data:`LABEL_CAP` distinct values of one label in a process, further
values are reported as ``other``. A run id, tenant or event id is never a label.

With ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus_client's multiprocess mode, read when the
process starts), every value lives in memory-mapped files in that directory and ``/metrics``
reports the directory's sum: the counts of a process that was killed (even by SIGKILL) are kept,
and a process restarted on the same directory (one volume per worker slot) goes on from them, so
the counters equal the read model's counts across crashes. The directory is created when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

#: prometheus_client's multiprocess directory; it must exist before the first metric is made.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR is not None:
    try:
        os.makedirs(MULTIPROC_DIR, exist_ok=True)
    except OSError as _err:
        raise RuntimeError(f"PROMETHEUS_MULTIPROC_DIR={MULTIPROC_DIR!r} cannot be created ({_err.strerror}); point it at a writable directory or unset it") from None

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from runtime_core.persistence import WaitRow  # noqa: E402

__all__ = [
    "CONTENT_TYPE_LATEST",
    "LABEL_CAP",
    "MULTIPROC_DIR",
    "REGISTRY",
    "STUCK_REASONS",
    "exposed_registry",
    "observe_action",
    "observe_deliveries",
    "observe_rows",
    "observe_run_ended",
    "observe_run_started",
    "refresh_open_waits",
    "refreshing_gauges",
    "render_latest",
    "seconds_between",
    "serve_metrics",
    "serving_metrics",
    "set_stuck_runs",
]

log = logging.getLogger(__name__)

#: Distinct values one author-controlled label may take in a process before ``other``.
LABEL_CAP = 500
#: The reasons of a stuck-run diagnosis (:class:`runtime_core.operations.Diagnoser`).
STUCK_REASONS = ("NO_WORKER", "EXECUTION_GONE", "WORKFLOW_TASK_FAILING", "ACTIVITY_RETRYING", "BACKLOG")
_WAIT_TYPES = ("event", "time", "human")
_DELIVERY_STATUS = {"DELIVERED": "delivered", "SKIPPED": "skipped", "FAILED": "failed", "PENDING": "retried"}

#: The process's registry (the runtime's metrics only; the SDK's are on their own port).
REGISTRY = CollectorRegistry()

RUNS_STARTED = Counter("wfr_runs_started", "Runs started (top-level by the launcher in this process, children by the workflow-worker).", ["workflow"], registry=REGISTRY)
RUNS_ENDED = Counter("wfr_runs_ended", "Runs that reached a terminal status, recorded by the workflow-worker.", ["workflow", "status"], registry=REGISTRY)
STEP_DURATION = Histogram(
    "wfr_step_duration_seconds", "Duration of ended steps, by step type.", ["step_type"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
ACTION_ATTEMPTS = Counter(
    "wfr_action_attempts", "Attempts of action.call steps: succeeded, failed (the action's error), replayed (answered from the ledger), "
    "infrastructure_error (retried by Temporal, not an authored attempt).", ["action", "outcome"], registry=REGISTRY,
)
ACTION_FAILURES = Counter("wfr_action_failures", "Failed action attempts by the action's error category.", ["action", "category"], registry=REGISTRY)
EVENT_DELIVERIES = Counter(
    "wfr_event_deliveries", "Event delivery attempts by kind (signal, trigger) and outcome (delivered, skipped, failed, retried).", ["kind", "status"], registry=REGISTRY,
)
EVENT_DELIVERY_LAG = Histogram(
    "wfr_event_delivery_lag_seconds", "From an event's receipt to its delivery to a run.", registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
# read-model gauges: in multiprocess mode the most recently set value is the one reported
OPEN_WAITS = Gauge(
    "wfr_open_waits", "Open waits in the read model by type (the same value on every process that reports it).", ["type"], registry=REGISTRY, multiprocess_mode="mostrecent",
)
STUCK_RUNS = Gauge("wfr_stuck_runs", "RUNNING runs diagnosed stuck by the last housekeeping pass, by reason.", ["reason"], registry=REGISTRY, multiprocess_mode="mostrecent")


def exposed_registry() -> CollectorRegistry:
    """What ``/metrics`` reports: :data:`REGISTRY`, or in multiprocess mode the sum of the directory's files."""
    if MULTIPROC_DIR is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROC_DIR)  # type: ignore[no-untyped-call]
    return registry


class _Capped:
    """A label whose distinct values are capped; later values become ``other``."""

    def __init__(self, cap: int = LABEL_CAP) -> None:
        self.cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        text = str(value) if value is not None else "unknown"
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) < self.cap:
                self._seen.add(text)
                return text
        return "other"


_workflows = _Capped()
_actions = _Capped()
_categories = _Capped(50)
_step_types = _Capped(100)


def observe_run_started(workflow_id: str) -> None:
    """Count a run started."""
    RUNS_STARTED.labels(_workflows(workflow_id)).inc()


def observe_run_ended(workflow_id: str, status: str) -> None:
    """Count a run that reached ``status`` (SUCCEEDED, FAILED, CANCELED …)."""
    RUNS_ENDED.labels(_workflows(workflow_id), status).inc()


def observe_rows(rows: Iterable[dict[str, Any]]) -> None:
    """Observe committed projection rows: ended steps' durations and children's run creations."""
    for row in rows:
        kind = row.get("kind")
        if kind == "step" and row.get("durationMs") is not None and row.get("type"):
            STEP_DURATION.labels(_step_types(row["type"])).observe(max(0.0, float(row["durationMs"]) / 1000))
        elif kind == "run-create" and row.get("workflowId"):
            observe_run_started(row["workflowId"])


def observe_action(action_id: str, outcome: str, category: str | None = None) -> None:
    """Count one action attempt; a ``failed`` one is also counted by its error category."""
    action = _actions(action_id)
    ACTION_ATTEMPTS.labels(action, outcome).inc()
    if outcome == "failed":
        ACTION_FAILURES.labels(action, _categories(category or "ActionError")).inc()


def observe_deliveries(attempts: Iterable[tuple[str, str, float | None]]) -> None:
    """Count recorded delivery attempts: ``(kind, status, lag seconds when delivered)``."""
    for kind, status, lag in attempts:
        EVENT_DELIVERIES.labels(kind if kind in ("signal", "trigger") else "other", _DELIVERY_STATUS.get(status, "other")).inc()
        if status == "DELIVERED" and lag is not None:
            EVENT_DELIVERY_LAG.observe(max(0.0, lag))


def seconds_between(earlier: datetime, later: datetime) -> float:
    """``later - earlier`` in seconds, a naive datetime (SQLite) taken as UTC."""
    return (_aware(later) - _aware(earlier)).total_seconds()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def set_stuck_runs(counts: dict[str, int]) -> None:
    """Set the stuck-run gauge from one complete diagnosis pass (reasons not in ``counts`` are 0)."""
    for reason in STUCK_REASONS:
        STUCK_RUNS.labels(reason).set(counts.get(reason, 0))


async def refresh_open_waits(database: Any) -> None:
    """Set the open-waits gauge from the read model (one grouped count)."""
    async with database.sessions() as session:
        rows = (await session.execute(select(WaitRow.wait_type, func.count()).where(WaitRow.status == "WAITING").group_by(WaitRow.wait_type))).all()
    counts = dict.fromkeys((*_WAIT_TYPES, "other"), 0)
    for wait_type, n in rows:
        counts[wait_type if wait_type in _WAIT_TYPES else "other"] += int(n)
    for wait_type, n in counts.items():
        OPEN_WAITS.labels(wait_type).set(n)


_last_refresh: dict[str, float] = {}


async def render_latest(database: Any, max_age: float = 5.0) -> bytes:
    """The registry in Prometheus text format, the read-model gauges refreshed when older than ``max_age`` seconds.

    For a process that serves ``/metrics`` from its own web app (the API).
    """
    now = time.monotonic()
    if now - _last_refresh.get(database.url, -max_age - 1) > max_age:
        _last_refresh[database.url] = now
        try:
            await refresh_open_waits(database)
        except Exception as err:
            log.warning("could not refresh wfr_open_waits (%s: %s)", type(err).__name__, err)
    return bytes(generate_latest(exposed_registry()))


@contextlib.asynccontextmanager
async def refreshing_gauges(database: Any, interval: float = 15.0) -> AsyncIterator[None]:
    """Refresh the read-model gauges every ``interval`` seconds while the block runs."""

    async def loop() -> None:
        while True:
            try:
                await refresh_open_waits(database)
            except Exception as err:  # a scrape shows the last value; the next pass retries
                log.warning("could not refresh wfr_open_waits (%s: %s)", type(err).__name__, err)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def serve_metrics(port: int, host: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` of :data:`REGISTRY` on ``host:port`` from a daemon thread; returns the server.

    Raises:
        RuntimeError: The port cannot be bound; the message names WFR_METRICS_PORT.
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=exposed_registry())
    except OSError as err:
        raise RuntimeError(f"cannot serve metrics on {host}:{port} ({err}); choose a free WFR_METRICS_PORT") from err
    log.info("serving metrics on http://%s:%d/metrics", host, port)
    return server


@contextlib.asynccontextmanager
async def serving_metrics(port: int | None, database: Any) -> AsyncIterator[None]:
    """Serve the runtime's metrics on ``port`` (``WFR_METRICS_PORT``) while the block runs; nothing when ``None``.

    Also keeps the read-model gauges (``wfr_open_waits``) fresh.

    Raises:
        RuntimeError: The port cannot be bound.
    """
    if port is None:
        yield
        return
    server = serve_metrics(port)
    try:
        async with refreshing_gauges(database):
            yield
    finally:
        server.shutdown()
        server.server_close()
