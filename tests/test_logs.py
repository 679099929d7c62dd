"""Process logs: ``WFR_LOG_FORMAT=json`` lines with run context, and never a secret value."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from temporalio.client import Client, WorkflowFailureError

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap.cli import wfr
from runtime_core.actions import ActionRegistry
from runtime_core.launcher import Launcher
from runtime_core.logs import JsonFormatter, ScrubbingFormatter, configured_secrets, log_context
from runtime_core.operations import Operations
from runtime_core.persistence import Database, upgrade
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view

BIN = Path(sys.executable).parent
KEYS = {"time", "level", "logger", "message", "process"}

LEAKY_ACTIONS = '''
import logging

log = logging.getLogger("acme_leaky")


async def leak(ctx, data):
    log.warning("leak got input %s", data)
    try:
        raise ValueError("inner failure with " + data["token"])
    except ValueError:
        log.exception("leak caught an error about %s", data["token"])
    raise RuntimeError("leak failed with " + data["token"])


def register(registry):
    registry.register("acme.leak", 1, leak)
'''


def _install_leaky_actions(root: Path) -> None:
    """A user package whose action logs its input and raises an error holding it."""
    (root / "acme_leaky").mkdir()
    (root / "acme_leaky" / "__init__.py").write_text(LEAKY_ACTIONS)
    dist = root / "acme_leaky-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-leaky\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runtime_core.actions]\nacme = acme_leaky:register\n")


def _env(server: DevServer, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env.update(WFR_TEMPORAL_ADDRESS=server.address, WFR_TEMPORAL_NAMESPACE="wfr-misc", WFR_DATABASE_URL=db_url, **extra)
    return env


async def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {path.read_text()}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"never logged {text!r}: {path.read_text()}")


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_worker_log_lines_carry_the_attempt_and_never_a_secret(temporal_server: DevServer, tmp_path: Path, log_format: str) -> None:
    """A real workflow-worker runs an action that logs its secret input and raises with it.

    In JSON every stderr line is one object with the documented keys, and the handler's own line
    carries tenant, run id, step path, action id and attempt; in both formats no line holds the
    secret value (nor the other configured secret).
    """
    _install_leaky_actions(tmp_path)
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    other = f"0ther-{uuid.uuid4().hex}"
    db_url = f"sqlite:///{tmp_path / 'logs.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    registry = ActionRegistry.default()
    registry.register("acme.leak", 1, lambda ctx, data: data)  # publish-time view of the user's action
    definition = {"id": "leaky", "version": 1, "name": "leaky", "steps": [
        {"id": "call", "type": "action.call", "config": {"actionId": "acme.leak", "version": 1, "inputMapping": {"token": {"$secret": "API_TOKEN"}, "who": "ada"}},
         "retry": {"maxAttempts": 1, "backoffMs": 0}}]}
    assert (await publish_definitions(database, registry, tenant, [definition])).published
    env = _env(temporal_server, db_url, WFR_LOG_FORMAT=log_format, WFR_LOG_LEVEL="DEBUG", WFR_SECRET_API_TOKEN=secret, WFR_SECRET_UNUSED=other)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    err_log, out_log = tmp_path / "stderr.log", tmp_path / "stdout.log"
    with err_log.open("wb") as err, out_log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "workflow-worker")], env=env, stdout=out, stderr=err)
    try:
        await _wait_for(err_log, "polling task queue workflow-runtime-v2", proc)
        client = await Client.connect(temporal_server.address, namespace="wfr-misc")
        launched = await Launcher(client, database).launch(tenant, "leaky", {})
        with pytest.raises(WorkflowFailureError):  # the run fails with the action's error
            await asyncio.wait_for(client.get_workflow_handle(launched.temporal_workflow_id).result(), 30)
        view = await run_view(database, launched.run_id)
        assert view is not None and view["status"] == "FAILED"
        await _wait_for(err_log, "leak caught an error", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
        await database.dispose()
    text = err_log.read_text()
    assert code == 0, text
    assert secret not in text and other not in text and secret not in out_log.read_text()
    assert "[REDACTED]" in text
    if log_format == "text":
        assert "leak got input" in text and "Traceback" in text
        return
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    for line in lines:
        assert set(line) >= KEYS, line
        assert line["process"] == "workflow-worker" and line["time"].endswith("Z")
    got = next(line for line in lines if line["message"].startswith("leak got input"))
    assert got["logger"] == "acme_leaky" and got["level"] == "WARNING"
    assert got["tenant"] == tenant and got["runId"] == launched.run_id and got["stepPath"] == "root.steps[0]"
    assert got["actionId"] == "acme.leak" and got["attempt"] == 1
    assert "[REDACTED]" in got["message"] and "ada" in got["message"]
    caught = next(line for line in lines if line["message"].startswith("leak caught an error"))
    assert "ValueError: inner failure with [REDACTED]" in caught["exception"] and caught["runId"] == launched.run_id
    raised = [line for line in lines if "RuntimeError: leak failed with [REDACTED]" in line["message"]]
    assert raised and raised[0]["logger"] == "runtime_core.activities._activities" and raised[0]["stepPath"] == "root.steps[0]"
    assert any(line.get("exception") for line in lines if line["logger"] == "runtime_core.activities._activities")  # the DEBUG traceback
    started = next(line for line in lines if line["message"].startswith("polling task queue"))
    assert "runId" not in started and "tenant" not in started


@pytest.mark.parametrize("command", ["workflow-worker", "domain-worker"])
def test_bad_log_format_exits_2_naming_the_variable(command: str) -> None:
    """An unknown WFR_LOG_FORMAT is a configuration error: exit 2, the message names the variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env["WFR_LOG_FORMAT"] = "xml"
    result = subprocess.run([str(BIN / command)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "WFR_LOG_FORMAT must be text or json" in result.stderr and "'xml'" in result.stderr


def test_wfr_refuses_a_bad_log_format(tmp_path: Path) -> None:
    """`wfr` exits 2 with the variable's name before running a command."""
    result = CliRunner().invoke(wfr, ["db", "upgrade", "--url", f"sqlite:///{tmp_path / 'x.db'}"], env={"WFR_LOG_FORMAT": "yaml"})
    assert result.exit_code == 2
    assert "WFR_LOG_FORMAT must be text or json" in result.output
    assert not (tmp_path / "x.db").exists()


def _record(message: str, *args: Any, exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("acme", logging.ERROR, __file__, 1, message, args, (type(exc), exc, exc.__traceback__) if exc else None)
    record.__dict__.update(extra)
    return record


def test_formatters_redact_configured_secrets_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secret values (WFR_SECRET_*, the database password) never survive either formatter."""
    key = 'k"e\\y-1'  # characters JSON escapes
    monkeypatch.setenv("WFR_SECRET_ACME__KEY", key)
    monkeypatch.setenv("WFR_DATABASE_URL", "postgresql://wfr:pa%40ss@db/wfr")
    assert {key, "pa%40ss", "pa@ss"} <= set(configured_secrets())
    try:
        raise RuntimeError(f"failed with {key} on {os.environ['WFR_DATABASE_URL'].split(':')[2][:7].replace('%40', '@')}")
    except RuntimeError as err:
        record = _record("key %s url %s", key, os.environ["WFR_DATABASE_URL"], exc=err, temporal_activity={"activity_type": "x", "workflow_id": "w", "note": "pa@ss"})
    line = JsonFormatter("api").format(record)
    assert 'e\\y-1' not in json.loads(line)["message"] and "pa@ss" not in line and "pa%40ss" not in line and 'k\\"e' not in line
    parsed = json.loads(line)
    assert parsed["message"] == "key [REDACTED] url postgresql://wfr:[REDACTED]@db/wfr"
    assert "RuntimeError: failed with [REDACTED] on [REDACTED]" in parsed["exception"]
    assert parsed["activityType"] == "x" and parsed["temporalWorkflowId"] == "w" and parsed["process"] == "api"
    record.exc_text = None
    text = ScrubbingFormatter("%(message)s").format(record)
    assert 'k"e\\y-1' not in text and "pa@ss" not in text and "pa%40ss" not in text


def test_context_and_resolved_secrets_reach_the_line() -> None:
    """Fields set by log_context appear in JSON lines; a value resolved in the context is redacted."""
    used: list[str] = []
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("wfr"))
    logger = logging.getLogger("acme.context")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(tenant="acme", runId="r1", stepPath="a/b", _secrets=used):
            used.append("from-a-custom-provider")
            logger.warning("value from-a-custom-provider")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert inside["tenant"] == "acme" and inside["runId"] == "r1" and inside["stepPath"] == "a/b"
    assert inside["message"] == "value [REDACTED]" and "_secrets" not in inside
    assert "tenant" not in outside


def test_access_lines_drop_the_query_string() -> None:
    """A uvicorn access line gives method, path and status; the query string (a token?) is dropped."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/api/v1/runs?token=abc", "1.1", 200), None)
    line = json.loads(JsonFormatter("api").format(record))
    assert line["method"] == "GET" and line["path"] == "/api/v1/runs" and line["status"] == 200
    assert "abc" not in json.dumps(line)
    assert "abc" not in ScrubbingFormatter("%(message)s").format(record)


async def test_wfr_serve_json_access_lines_never_carry_the_token(temporal_server: DevServer, tmp_path: Path) -> None:
    """`wfr serve` with WFR_LOG_FORMAT=json: every stderr line is JSON (process `api`); access lines
    give method, path and status; neither the bearer token nor a query-string token appears."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    database = Database(url)
    await upgrade(database)
    token = (await Operations(database, None).create_token("acme", "viewer", "ci")).token
    await database.dispose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_env(temporal_server, url), "WFR_LOG_FORMAT": "json"}
    process = subprocess.Popen([str(BIN / "wfr"), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert process.poll() is None, process.communicate()
                await asyncio.sleep(0.1)
            runs = await http.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
            assert runs.status_code == 200
            assert (await http.get("/api/v1/runs", params={"access_token": token})).status_code in (401, 422)  # a token in a query string
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert token not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert all(set(line) >= KEYS and line["process"] == "api" for line in lines), lines
    access = [line for line in lines if line["logger"] == "uvicorn.access" and line.get("path") == "/api/v1/runs"]
    assert len(access) == 2 and access[0]["method"] == "GET" and access[0]["status"] == 200, lines
    assert all("access_token" not in line["message"] for line in access)
