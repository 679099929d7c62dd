"""OpenTelemetry tracing: off by default, exported by OTLP over HTTP when configured.

One trace follows a run from the API request that launched it into its actions: the API's
request span (runtime-bootstrap), the Temporal SDK's ``StartWorkflow``, ``RunWorkflow``,
``StartActivity`` and ``RunActivity`` spans (:class:`temporalio.contrib.opentelemetry.TracingInterceptor`
on every client, and so on the workers built from them) and the action activity's own
``wfr.action <action id>`` span.

Tracing is on only when ``WFR_TRACING`` says so (``otlp``), or, with its default ``auto``, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and
``OTEL_SDK_DISABLED`` is not ``true``): :attr:`runtime_core.config.RuntimeSettings.tracing`.
Off, nothing of OpenTelemetry is imported, no interceptor is added and the action activity
checks one module flag. On, it needs the SDK and the OTLP exporter (``runtime-core[otel]``).

Span attributes never hold a payload value, an action's input or output, an error message or a
secret: only ids (run id, step path, action id, tenant, attempt), routes, status codes and
error categories.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from runtime_core.config import ConfigError, RuntimeSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["action_span", "configure", "configure_from_settings", "enabled", "interceptors", "shutdown", "tracer"]

log = logging.getLogger(__name__)

#: Whether tracing is on in this process: the only thing the hot path reads when it is off.
_ENABLED = False
_PROVIDER: TracerProvider | None = None
_TRACER: Tracer | None = None
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()
_INSTRUMENTATION = "runtime_core"


def enabled() -> bool:
    """Whether tracing is on in this process."""
    return _ENABLED


def tracer() -> Tracer | None:
    """The tracer of the runtime's own spans; ``None`` when tracing is off."""
    return _TRACER if _ENABLED else None


def configure(provider: TracerProvider) -> None:
    """Turn tracing on with ``provider`` (an SDK :class:`~opentelemetry.sdk.trace.TracerProvider`).

    :func:`configure_from_settings` calls it for a process; tests call it with a provider of
    their own (an in-memory exporter, a local OTLP receiver). The provider is not made the
    global one: the runtime's spans and the SDK interceptor of :func:`interceptors` use it
    directly, so a test can configure, :func:`shutdown` and configure again.
    """
    global _ENABLED, _PROVIDER, _TRACER
    _PROVIDER = provider
    _TRACER = provider.get_tracer(_INSTRUMENTATION)
    _ENABLED = True


def configure_from_settings(settings: RuntimeSettings, service_name: str) -> bool:
    """Turn tracing on for this process when ``settings.tracing`` says so; whether it is on.

    The provider exports through a batch span processor and the OTLP HTTP exporter, which reads
    the standard ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, timeout, compression).
    Its resource's ``service.name`` is ``OTEL_SERVICE_NAME`` when set, else ``service_name``
    (``workflow-worker``, ``domain-worker``, ``wfr-api``, ``wfr-dev``); ``OTEL_RESOURCE_ATTRIBUTES``
    adds attributes. It also becomes the global tracer provider (when none was set), so
    libraries that trace through the OpenTelemetry API join the same traces. Calling it again
    once tracing is on changes nothing.

    Raises:
        ConfigError: Tracing is configured but the OpenTelemetry SDK or its OTLP exporter is not
            installed; the message names the variable and ``pip install 'runtime-core[otel]'``.
    """
    if settings.tracing is None:
        return False
    if _ENABLED:
        return True
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as err:
        raise ConfigError(
            f"{settings.tracing} is set but the OpenTelemetry SDK is not installed: pip install 'runtime-core[otel]' ({err})"
        ) from None
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME", "").strip() else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    configure(provider)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):  # none set yet
        trace.set_tracer_provider(provider)
    log.info("tracing on (%s): spans exported by OTLP over HTTP as service %s", settings.tracing, os.environ.get("OTEL_SERVICE_NAME", "").strip() or service_name)
    return True


def interceptors() -> list[Any]:
    """The Temporal client interceptors of this process: ``[TracingInterceptor]`` when tracing is on, else ``[]``.

    Pass them to :meth:`temporalio.client.Client.connect`: a client's interceptors also apply to
    every worker built on it (``RunWorkflow``, ``StartActivity``, ``RunActivity`` spans), and a
    ``StartWorkflow`` made while a span is current (an API request's) becomes its child.
    """
    if not _ENABLED:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_TRACER)]


def action_span(*, run_id: str, step_path: str, action_id: str, tenant: str, attempt: int) -> AbstractContextManager[Span | None]:
    """The span ``wfr.action <action id>`` around one action attempt; a no-op when tracing is off.

    Inside the action activity it is a child of the SDK's ``RunActivity`` span. Its attributes
    are ``wfr.run_id``, ``wfr.step_path``, ``wfr.action_id``, ``wfr.tenant`` and ``wfr.attempt``;
    when the attempt raises, its status is ``ERROR`` with the error's category (the
    ``ApplicationError`` type: ``ActionError``, ``ValidationError``, ``InfrastructureError`` …,
    or the exception's class name) as description and as ``error.type``. The error's message is
    never recorded (it may quote data).
    """
    if not _ENABLED:
        return _NO_SPAN
    return _action_span(run_id, step_path, action_id, tenant, attempt)


@contextlib.contextmanager
def _action_span(run_id: str, step_path: str, action_id: str, tenant: str, attempt: int) -> Iterator[Span | None]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    assert _TRACER is not None
    attributes: dict[str, str | int] = {"wfr.run_id": run_id, "wfr.step_path": step_path, "wfr.action_id": action_id, "wfr.tenant": tenant, "wfr.attempt": attempt}
    with _TRACER.start_as_current_span(
        f"wfr.action {action_id}", kind=SpanKind.INTERNAL, attributes=attributes, record_exception=False, set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as err:
            category = _category(err)
            span.set_attribute("error.type", category)
            span.set_status(Status(StatusCode.ERROR, category))
            raise


def _category(err: BaseException) -> str:
    """An error's category: an ``ApplicationError``'s type, else the exception's class name."""
    from temporalio.exceptions import ApplicationError

    if isinstance(err, ApplicationError) and err.type:
        return err.type
    return type(err).__name__


def shutdown(timeout_millis: int = 5000) -> None:
    """Flush the spans still buffered and turn tracing off; nothing when it is off.

    Worker processes call it after draining (SIGTERM), ``wfr serve`` and ``wfr dev`` when they
    stop, so the last spans reach the collector.
    """
    global _ENABLED, _PROVIDER, _TRACER
    provider, _PROVIDER, _TRACER, _ENABLED = _PROVIDER, None, None, False
    if provider is None:
        return
    try:
        provider.force_flush(timeout_millis)
        provider.shutdown()
    except Exception as err:  # an unreachable collector must not turn a clean stop into a failure
        log.warning("could not flush the last spans (%s: %s)", type(err).__name__, err)
