"""The app factory: the operator API (``/api/v1``), health checks, the OpenAPI document and docs, and Run Studio (``/``)."""

from __future__ import annotations

from fastapi import FastAPI

from runtime_bootstrap._version import __version__
from runtime_bootstrap.api import definitions, events, health, metrics, redaction_rules, runs, schedules, settings, task_definitions, tasks
from runtime_bootstrap.api._openapi import build_openapi, operation_id
from runtime_bootstrap.api._problems import install_problem_handlers
from runtime_bootstrap.studio import install_studio
from runtime_core import tracing
from runtime_core.operations import Operations

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

_DESCRIPTION = """\
The operator and author API of the authored-workflow runtime: runs, events, human tasks,
definitions. Every `/api/v1` route needs `Authorization: Bearer <token>` (`wfr tokens create`);
errors are `application/problem+json`. Conventions: docs/api.md.
"""

_TAGS = [
    {"name": "runs", "description": "Runs: read, launch, cancel, replay, resume, reconcile."},
    {"name": "events", "description": "Inbound events and their deliveries."},
    {"name": "tasks", "description": "Human tasks."},
    {"name": "definitions", "description": "Workflow definitions and their versions."},
    {"name": "task-definitions", "description": "Human task types and their form schemas."},
    {"name": "schedules", "description": "The Temporal Schedules of `schedule` and `recurring` triggers."},
    {"name": "redaction-rules", "description": "What the tenant's values show as [REDACTED]."},
    {"name": "settings", "description": "The tenant's settings: retention of ended runs and of the idempotency ledger."},
    {"name": "health", "description": "Liveness and readiness (no authentication)."},
]


def create_app(operations: Operations | None, *, metrics_route: bool = False) -> FastAPI:
    """The API app over ``operations`` (one :class:`Operations` per process, shared by every request).

    Args:
        operations: The operations on the runtime's database and Temporal client. ``None`` builds
            an app that can only describe itself (its OpenAPI document, for docs generation).
        metrics_route: Serve the runtime's Prometheus metrics at ``/metrics`` (``wfr serve``
            turns it on when ``WFR_METRICS_PORT`` is set).

    With tracing on (:mod:`runtime_core.tracing`, configured before the app is built) every
    request is a server span; off, the app has no tracing middleware at all.
    """
    app = FastAPI(
        title="Authored workflow runtime",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_tags=_TAGS,
        generate_unique_id_function=operation_id,
        # FastAPI's own OpenTelemetry (newer releases; older ones ignore the option) stays off:
        # the runtime's middleware is the one request span, with ids and routes only, never a
        # body or an error message, and nothing at all runs when tracing is off
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.operations = operations
    for module in (runs, events, tasks, definitions, task_definitions, redaction_rules, schedules, settings):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    if metrics_route:
        app.include_router(metrics.router)
    install_studio(app)
    install_problem_handlers(app)
    if tracing.enabled():
        from runtime_bootstrap.api._tracing import TracingMiddleware

        app.add_middleware(TracingMiddleware)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app

