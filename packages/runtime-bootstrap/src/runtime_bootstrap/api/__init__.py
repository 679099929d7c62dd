"""The HTTP API (FastAPI): a thin face over :mod:`runtime_core.operations`, served by ``wfr serve`` and ``wfr dev``.

One router module per resource (``runs``, ``events``, ``tasks``, ``definitions``,
``task_definitions``, ``redaction_rules``, ``health``); each route parses the request, calls one
operation with the caller's tenant and shapes the answer. Authentication, roles and the
operations object are dependencies (``_deps``); every error is ``application/problem+json`` from
one set of handlers (``_problems``). Conventions: docs/api.md.
"""

from runtime_bootstrap.api._app import API_PREFIX, create_app
from runtime_bootstrap.api._serve import serve_until_stopped, serving, serving_operations

__all__ = ["API_PREFIX", "create_app", "serve_until_stopped", "serving", "serving_operations"]
