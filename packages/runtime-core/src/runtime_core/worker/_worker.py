"""Building the authored worker: the interpreter workflow and its activities on one queue."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.runtime import LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from runtime_core import tracing
from runtime_core.actions import ActionRegistry
from runtime_core.activities import RuntimeActivities
from runtime_core.config import RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.interpreter import InterpreterWorkflow
from runtime_core.persistence import Database
from runtime_core.secrets import SecretProvider

__all__ = ["PASSTHROUGH_MODULES", "build_authored_worker", "connect_temporal", "domain_workflow_runner", "temporal_runtime", "workflow_runner"]

#: Deterministic libraries the interpreter uses, loaded once outside the sandbox. jsonata-python
#: imports parts of itself lazily during evaluation, so a with-block in the workflow module is not
#: enough: the whole package must pass through. ``re2`` (RE2 regexes of expressions) is a native
#: extension with no state that matters to determinism.
PASSTHROUGH_MODULES = (
    "jsonata", "re2", "pydantic", "pydantic_core", "annotated_types", "jsonschema", "runtime_core.dsl", "runtime_core.expressions", "runtime_core.errors",
    "runtime_core.contract", "runtime_core.values", "runtime_core.interpreter._engine", "runtime_core.interpreter._values",
)


def workflow_runner(*, sandboxed: bool = False) -> WorkflowRunner:
    """The runner of the interpreter workflow: direct by default, or Temporal's sandbox.

    Temporal's sandbox guards hand-written workflow code against non-deterministic calls by
    running every activation through restricted module proxies. The interpreter is the runtime's
    own code, not the authors' (they write JSON), and its determinism is checked by its tests:
    the replay corpus replays under the sandbox too, and a source scan forbids host clocks,
    random and I/O in workflow code (tests/test_replay.py). Measured, the sandbox cost about a
    fifth of the workflow-worker's short-action throughput (a quarter before the action path got
    cheaper), so it runs the interpreter directly unless
    ``WFR_WORKFLOW_SANDBOX=1`` (``sandboxed=True``) asks for the sandbox (docs/performance.md).
    Both run the same code: runs move between workers of either kind.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES))


def domain_workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner of the domain queue's workers (housekeeping, the schedules' fire workflow).

    ``runtime_core.schedules`` passes through: its fire workflow is deterministic, but the package
    also holds the reconcile and the launch activity, which import the database layer.
    """
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES, "runtime_core.schedules"))


_RUNTIME: Runtime | None = None
_RUNTIME_METRICS: str | None = None


def temporal_runtime(metrics_address: str | None = None) -> Runtime:
    """The process-wide Temporal runtime, forwarding SDK-core logs to Python logging.

    Without it the Rust core writes its warnings to stdout, which would corrupt machine-readable
    output (``wfr scenario run``) and bypass the process's logging configuration. A process has
    one runtime, created on first use: the SDK's Prometheus exporter can only be configured by
    that first call.

    Args:
        metrics_address: ``host:port`` for the SDK's Prometheus exporter (``temporal_*``
            metrics, durations in seconds); ``None`` exports no SDK metrics.

    Raises:
        RuntimeError: The exporter cannot bind its address (the message names
            WFR_TEMPORAL_METRICS_PORT). A runtime that already exists is returned as it is
            (with a warning when another exporter address is asked for).
    """
    global _RUNTIME, _RUNTIME_METRICS
    if _RUNTIME is None:
        metrics = PrometheusConfig(bind_address=metrics_address, counters_total_suffix=True, durations_as_seconds=True) if metrics_address else None
        try:
            _RUNTIME = Runtime(
                telemetry=TelemetryConfig(
                    logging=LoggingConfig(
                        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
                    ),
                    metrics=metrics,
                )
            )
        except Exception as err:
            raise RuntimeError(f"cannot start the Temporal SDK's metrics exporter on {metrics_address} ({err}); choose a free WFR_TEMPORAL_METRICS_PORT") from err
        _RUNTIME_METRICS = metrics_address
    elif metrics_address is not None and metrics_address != _RUNTIME_METRICS:
        logging.getLogger(__name__).warning("the Temporal runtime of this process was created before its metrics exporter was configured: no SDK metrics on %s", metrics_address)
    return _RUNTIME


async def connect_temporal(settings: RuntimeSettings, *, identity: str | None = None) -> Client:
    """Connect to Temporal as configured.

    Args:
        settings: Address and namespace.
        identity: Client identity (also the identity of workers built on the client); the SDK's
            ``pid@hostname`` when omitted. Worker processes pass
            :func:`runtime_core.worker.process_identity` so pollers can be told apart.

    With tracing on (:func:`runtime_core.tracing.configure_from_settings`), the client carries
    the SDK's tracing interceptor, and so do the workers built on it.

    Raises:
        RuntimeError: Temporal is unreachable; the message names WFR_TEMPORAL_ADDRESS.
    """
    try:
        runtime = temporal_runtime(f"0.0.0.0:{settings.temporal_metrics_port}" if settings.temporal_metrics_port else None)
    except RuntimeError:
        raise
    try:
        return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime, identity=identity, interceptors=tracing.interceptors())
    except Exception as err:
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} (namespace {settings.temporal_namespace!r}): {err}. "
            "Check WFR_TEMPORAL_ADDRESS / WFR_TEMPORAL_NAMESPACE, or start one with `wfr dev`."
        ) from err


def build_authored_worker(
    client: Client,
    database: Database,
    registry: ActionRegistry | None = None,
    *,
    secrets: SecretProvider | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker polling ``workflow-runtime-v2`` with the interpreter and its activities.

    Args:
        client: Connected Temporal client.
        database: Projection and ledger database.
        registry: Actions to run; built-ins plus entry points when omitted.
        secrets: Secret provider for ``$secret`` references.
        worker_options: ``workflow_runner`` replaces :func:`workflow_runner`'s; the rest go to :class:`temporalio.worker.Worker` (concurrency limits …).
    """
    activities = RuntimeActivities(database, registry or ActionRegistry.default(), secrets)
    # Heartbeats reach the server at least every second, so a cancel reaches a running action
    # within about a second (the SDK would otherwise wait up to 80% of the heartbeat timeout).
    worker_options.setdefault("max_heartbeat_throttle_interval", timedelta(seconds=1))
    return Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[InterpreterWorkflow],
        activities=activities.all(),
        workflow_runner=worker_options.pop("workflow_runner", None) or workflow_runner(),
        **worker_options,
    )
