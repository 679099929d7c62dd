"""Process logging: ``text`` or ``json`` lines on stderr, with run context and no secret values.

:func:`configure_logging` installs one stderr handler on the root logger. :func:`log_context`
sets fields (tenant, run id, step path, …) for everything logged inside it, including by user
action handlers through the standard :mod:`logging` module and by tasks started inside it. Every
line, in either format, has each configured secret value (``WFR_SECRET_*`` variables, the
password of ``WFR_DATABASE_URL``, and the values an action attempt resolved) replaced by
``[REDACTED]``, wherever it appears: message, extras or traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from runtime_core.secrets import scrub_text

__all__ = ["LOG_FORMATS", "JsonFormatter", "ScrubbingFormatter", "configure_logging", "configured_secrets", "log_context"]

#: The values ``WFR_LOG_FORMAT`` accepts.
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Context fields in the order they appear in a JSON line.
CONTEXT_FIELDS = ("tenant", "runId", "stepPath", "actionId", "attempt", "eventId", "workflowId")

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("wfr_log_context", default=None)
#: Secret values resolved in the current context (an action attempt's), scrubbed like configured ones.
_SECRETS_KEY = "_secrets"

# Temporal SDK extras (``temporal_workflow`` / ``temporal_activity``) flattened into a JSON line.
_TEMPORAL_FIELDS = {
    "workflow_id": "temporalWorkflowId",
    "run_id": "temporalRunId",
    "workflow_run_id": "temporalRunId",
    "workflow_type": "workflowType",
    "activity_type": "activityType",
    "activity_id": "activityId",
    "task_queue": "taskQueue",
    "attempt": "temporalAttempt",
}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (``None`` values are left out).

    Args:
        **fields: ``tenant``, ``runId``, ``stepPath``, ``actionId``, ``attempt``, ``eventId``, …;
            ``_secrets`` is a list of secret values to scrub (it may grow inside the block).
    """
    token = _context.set({**_current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _current() -> Mapping[str, Any]:
    return _context.get() or {}


def configured_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value the process knows: ``WFR_SECRET_*`` values and the database password.

    Args:
        env: The environment (the process environment when omitted).
    """
    env = os.environ if env is None else env
    found = [value for name, value in env.items() if name.startswith("WFR_SECRET_") and value]
    url = env.get("WFR_DATABASE_URL", "")
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            found += [password, unquote(password)]
    return found


def _secrets() -> list[str]:
    return [*configured_secrets(), *_current().get(_SECRETS_KEY, ())]


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {scrub_text(str(k), secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value), secrets)


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Method, path (without its query string) and status of a uvicorn access line."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return {}
    _client, method, path, _version, status = args
    return {"method": method, "path": str(path).split("?", 1)[0], "status": status}


def _access_record(record: logging.LogRecord, fields: dict[str, Any]) -> logging.LogRecord:
    """A copy of a uvicorn access record whose path has no query string (it may carry a token)."""
    args = cast(tuple[Any, ...], record.args)
    return logging.makeLogRecord({**record.__dict__, "args": (args[0], fields["method"], fields["path"], args[3], fields["status"])})


class ScrubbingFormatter(logging.Formatter):
    """Today's text format (``time LEVEL logger: message``), secret values redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line with every secret value replaced by ``[REDACTED]``."""
        if fields := _access_fields(record):
            record = _access_record(record, fields)
        return scrub_text(super().format(record), _secrets())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, context, exception."""

    def __init__(self, process: str) -> None:
        """Format lines of ``process`` (``workflow-worker``, ``domain-worker``, ``api``, ``wfr``)."""
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line, secret values replaced by ``[REDACTED]``."""
        access = _access_fields(record)
        message = _access_record(record, access).getMessage() if access else record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "process": self.process,
        }
        context = _current()
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, context.get(key))
            if value is not None:
                line[key] = value
        for extra in ("temporal_workflow", "temporal_activity"):
            info = getattr(record, extra, None)
            if isinstance(info, dict):
                for key, name in _TEMPORAL_FIELDS.items():
                    if info.get(key) is not None:
                        line.setdefault(name, info[key])
        line.update(access)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        secrets = _secrets()
        return scrub_text(json.dumps(_scrub(line, secrets), default=str, ensure_ascii=False), secrets)


def configure_logging(process: str, level: str | int = "INFO", log_format: str = "text") -> None:
    """Send every log line of this process to stderr in ``log_format``.

    Like :func:`logging.basicConfig`, it leaves a root logger that something else configured (a
    test harness, an application embedding the runtime) alone; a handler installed by an earlier
    call is replaced.

    Args:
        process: The process name carried by JSON lines.
        level: The root log level.
        log_format: ``text`` or ``json``.

    Raises:
        ValueError: ``log_format`` is not one of :data:`LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"WFR_LOG_FORMAT must be text or json, not {log_format!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_wfr", False)]:
        root.removeHandler(old)
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._wfr = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter(process) if log_format == "json" else ScrubbingFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
