"""Worker-safe settings read from ``WFR_*`` environment variables.

runtime-bootstrap layers application settings on top; the workers read these directly (they
never import runtime-bootstrap).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime_core.contract import DOMAIN_TASK_QUEUE

__all__ = ["SETTINGS_DOC", "TRACING_MODES", "ConfigError", "RuntimeSettings"]

#: Every variable, its default and meaning (rendered into docs/operations.md).
SETTINGS_DOC = {
    "WFR_TEMPORAL_ADDRESS": ("127.0.0.1:7233", "Temporal frontend host:port."),
    "WFR_TEMPORAL_NAMESPACE": ("default", "Temporal namespace of every authored run."),
    "WFR_DATABASE_URL": ("sqlite:///wfr.db", "SQLAlchemy URL: sqlite:///path or postgresql://user:pass@host/db."),
    "WFR_DOMAIN_TASK_QUEUE": (DOMAIN_TASK_QUEUE, "Queue the domain worker polls (never workflow-runtime-v2)."),
    "WFR_SWEEP_INTERVAL_SECONDS": ("60", "How often the authored worker sweeps expired data-store keys."),
    "WFR_HOUSEKEEPING_INTERVAL_SECONDS": ("300", "How often the domain worker's Temporal Schedule wfr:housekeeping runs the housekeeping workflow (data-store sweep, reconcile, stuck-run diagnoses, retention); at least 1."),
    "WFR_DELIVERY_POLL_SECONDS": ("1", "How often the workflow-worker looks for events to deliver when nothing wakes it (same-process sends and PostgreSQL NOTIFY wake it at once)."),
    "WFR_LOG_LEVEL": ("INFO", "Python log level of the worker processes."),
    "WFR_LOG_FORMAT": ("text", "Log line format of every process: text, or json (one object per line with tenant, run id, step path where known)."),
    "WFR_METRICS_PORT": ("", "Port serving the runtime's Prometheus metrics at /metrics (workflow-worker, domain-worker, `wfr serve`); off when unset."),
    "WFR_TEMPORAL_METRICS_PORT": ("", "Port of the Temporal SDK's own Prometheus exporter (workflow-worker, domain-worker, `wfr serve`); off when unset."),
    "WFR_HEALTH_PORT": ("", "TCP port on which a worker process serves GET /healthz and /readyz (off when unset); 1-65535."),
    "WFR_SHUTDOWN_GRACE_SECONDS": ("30", "On SIGTERM a worker stops polling and lets running activities finish for this long before cancelling them; a second SIGTERM or SIGINT exits at once."),
    "WFR_STRICT_OWNERSHIP": ("0", "1: a worker exits 1 at start-up when a process that is not a workflow-worker polls workflow-runtime-v2 (same as --strict); 0 only logs it."),
    "WFR_WORKFLOW_SANDBOX": (
        "0",
        "1: the workflow-worker runs the interpreter workflow inside Temporal's workflow sandbox, which turns a non-deterministic call (host clock, "
        "random, I/O) into a task failure at run time but costs about a fifth of a worker's short-action throughput; 0 (default) runs it directly "
        "(the interpreter is the runtime's own code, checked for such calls by its tests). Runs move freely between workers either way.",
    ),
    "WFR_TRACING": (
        "auto",
        "OpenTelemetry tracing exported by OTLP over HTTP: auto (on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and "
        "OTEL_SDK_DISABLED is not true), otlp (always on; the exporter's default endpoint is http://localhost:4318) or off. Needs runtime-core[otel].",
    ),
}

#: Values of ``WFR_TRACING``.
TRACING_MODES = ("auto", "otlp", "off")
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class ConfigError(ValueError):
    """A setting with an unusable value; the message names the variable and the fix."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Connection and worker settings."""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    database_url: str = "sqlite:///wfr.db"
    domain_task_queue: str = DOMAIN_TASK_QUEUE
    sweep_interval_seconds: float = 60.0
    delivery_poll_seconds: float = 1.0
    housekeeping_interval_seconds: float = 300.0
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_port: int | None = None
    temporal_metrics_port: int | None = None
    health_port: int | None = None
    shutdown_grace_seconds: float = 30.0
    strict_ownership: bool = False
    #: The variable that turned OpenTelemetry tracing on (``WFR_TRACING`` or an OTLP endpoint
    #: variable); ``None`` when tracing is off (the default).
    tracing: str | None = None
    #: Run the interpreter workflow inside Temporal's workflow sandbox (``WFR_WORKFLOW_SANDBOX``).
    workflow_sandbox: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeSettings:
        """Read settings from the environment.

        Raises:
            ConfigError: A variable holds an unusable value.
        """
        env = os.environ if env is None else env

        def get(name: str) -> str:
            value = env.get(name, SETTINGS_DOC[name][0]).strip()
            if not value:
                raise ConfigError(f"{name} is set but empty; unset it to use {SETTINGS_DOC[name][0]!r} or give a value")
            return value

        def seconds(name: str) -> float:
            try:
                value = float(get(name))
            except ValueError:
                raise ConfigError(f"{name} must be a number of seconds, not {env.get(name)!r}") from None
            if not value > 0 or value == float("inf"):
                raise ConfigError(f"{name} must be a positive number of seconds, not {env.get(name)!r}")
            return value

        interval = seconds("WFR_SWEEP_INTERVAL_SECONDS")
        delivery_poll = seconds("WFR_DELIVERY_POLL_SECONDS")
        housekeeping = seconds("WFR_HOUSEKEEPING_INTERVAL_SECONDS")
        if housekeeping < 1:  # a Temporal Schedule's interval has a one-second resolution
            raise ConfigError(f"WFR_HOUSEKEEPING_INTERVAL_SECONDS must be at least 1 second (default 300), not {env.get('WFR_HOUSEKEEPING_INTERVAL_SECONDS')!r}")
        address = get("WFR_TEMPORAL_ADDRESS")
        if ":" not in address:
            raise ConfigError(f"WFR_TEMPORAL_ADDRESS must be host:port, not {address!r}")
        level = get("WFR_LOG_LEVEL").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"WFR_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}")
        log_format = get("WFR_LOG_FORMAT").lower()
        if log_format not in ("text", "json"):
            raise ConfigError(f"WFR_LOG_FORMAT must be text or json, not {env.get('WFR_LOG_FORMAT')!r}")
        def port(name: str) -> int | None:
            value = env.get(name, "").strip()
            if not value:
                return None
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ConfigError(f"{name} must be a TCP port (1-65535), not {env.get(name)!r}; unset it to turn that endpoint off")
            return int(value)

        metrics_port, temporal_metrics_port = port("WFR_METRICS_PORT"), port("WFR_TEMPORAL_METRICS_PORT")
        if metrics_port is not None and metrics_port == temporal_metrics_port:
            raise ConfigError(f"WFR_METRICS_PORT and WFR_TEMPORAL_METRICS_PORT must differ (both {metrics_port}): the SDK's exporter binds its own port")
        health_port = None
        if env.get("WFR_HEALTH_PORT", "").strip():
            raw_port = env["WFR_HEALTH_PORT"].strip()
            if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
                raise ConfigError(f"WFR_HEALTH_PORT must be a TCP port from 1 to 65535, not {raw_port!r}; unset it to serve no health endpoints")
            health_port = int(raw_port)
        strict = get("WFR_STRICT_OWNERSHIP")
        if strict not in ("0", "1"):
            raise ConfigError(f"WFR_STRICT_OWNERSHIP must be 1 (a foreign poller of workflow-runtime-v2 is fatal) or 0 (it is logged), not {strict!r}")
        sandbox = get("WFR_WORKFLOW_SANDBOX")
        if sandbox not in ("0", "1"):
            raise ConfigError(f"WFR_WORKFLOW_SANDBOX must be 1 (run the interpreter in Temporal's workflow sandbox) or 0 (run it directly, the default), not {sandbox!r}")
        return cls(
            temporal_address=address,
            workflow_sandbox=sandbox == "1",
            tracing=_tracing(env, get("WFR_TRACING").lower()),
            temporal_namespace=get("WFR_TEMPORAL_NAMESPACE"),
            database_url=get("WFR_DATABASE_URL"),
            domain_task_queue=get("WFR_DOMAIN_TASK_QUEUE"),
            sweep_interval_seconds=interval,
            delivery_poll_seconds=delivery_poll,
            housekeeping_interval_seconds=housekeeping,
            log_level=level,
            log_format=log_format,
            metrics_port=metrics_port,
            temporal_metrics_port=temporal_metrics_port,
            health_port=health_port,
            shutdown_grace_seconds=seconds("WFR_SHUTDOWN_GRACE_SECONDS"),
            strict_ownership=strict == "1",
        )


def _tracing(env: Mapping[str, str], mode: str) -> str | None:
    """The variable that turns tracing on, ``None`` when it is off (see ``WFR_TRACING``).

    Raises:
        ConfigError: ``WFR_TRACING`` is not a mode, or an OTLP endpoint is not an http(s) URL.
    """
    if mode not in TRACING_MODES:
        raise ConfigError(f"WFR_TRACING must be auto, otlp or off, not {env.get('WFR_TRACING')!r}; unset it to trace only when OTEL_EXPORTER_OTLP_ENDPOINT is set")
    if mode == "off" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoints = [name for name in _OTLP_ENDPOINTS if env.get(name, "").strip()]
    for name in endpoints:
        if not env[name].strip().lower().startswith(("http://", "https://")):
            raise ConfigError(f"{name} must be an http:// or https:// URL (the OTLP HTTP receiver, such as http://collector:4318), not {env[name]!r}")
    if mode == "otlp":
        return "WFR_TRACING"
    return endpoints[-1] if endpoints else None
