"""A server span per HTTP request when tracing is on (:mod:`runtime_core.tracing`).

The span is named ``METHOD /route/{template}`` from the matched route (never the raw path, which
holds ids; ``METHOD`` alone when no route matched), with ``http.request.method``, ``http.route`` and ``http.response.status_code``. A
``traceparent`` header from the caller makes it a child of the caller's span. Work a request
does through the Temporal client (a launch's ``StartWorkflow``) becomes its child, since the
span is current while the route runs.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime_core import tracing

__all__ = ["TracingMiddleware"]

_PROPAGATOR = TraceContextTextMapPropagator()


class TracingMiddleware:
    """ASGI middleware: one ``SERVER`` span per HTTP request (added by ``create_app`` only when tracing is on)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request inside its span (a pass-through for anything but HTTP, or when tracing is off)."""
        tracer = tracing.tracer()
        if scope["type"] != "http" or tracer is None:
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET")).upper()
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", ()) if key in (b"traceparent", b"tracestate")}
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        with tracer.start_as_current_span(
            method, context=_PROPAGATOR.extract(carrier), kind=SpanKind.SERVER, attributes={"http.request.method": method},
            record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, sending)
            except BaseException as err:
                span.set_attribute("error.type", type(err).__name__)
                span.set_status(Status(StatusCode.ERROR, type(err).__name__))
                raise
            finally:
                route = _route_of(scope)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                if status:
                    span.set_attribute("http.response.status_code", status[0])
                    if status[0] >= 500:
                        span.set_status(Status(StatusCode.ERROR))


def _route_of(scope: Scope) -> str | None:
    """The matched route's full template (``/api/v1/runs/{runId}``); ``None`` when no route matched.

    Newer FastAPI releases put the route as its router declared it (``/runs/{runId}``) in the
    scope: the static prefix it was included under is the part of the path before the route's
    own match.
    """
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str) or not template:
        return None
    pattern = getattr(route, "path_regex", None)
    path = str(scope.get("path", ""))
    if pattern is None or pattern.match(path):
        return template
    for at in range(1, len(path)):
        if path[at] == "/" and pattern.match(path[at:]):
            return path[:at] + template
    return template
