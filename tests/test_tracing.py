"""OpenTelemetry tracing: one trace from an API launch into the run's actions, exported by OTLP.

The end-to-end test serves a real OTLP HTTP receiver (``POST /v1/traces``, protobuf, decoded with
``opentelemetry.proto``) and launches runs through the real app on a real stack (Temporal dev
server, SQLite, an authored worker whose client carries the tracing interceptor). Tracing off:
nothing is configured and nothing of OpenTelemetry is imported, even without the SDK installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap.api import create_app
from runtime_core import tracing
from runtime_core.actions import ActionRegistry
from runtime_core.config import SETTINGS_DOC, ConfigError, RuntimeSettings
from runtime_core.contract import ACTION_ACTIVITY, TASK_QUEUE, WORKFLOW_TYPE
from runtime_core.launcher import Launcher
from runtime_core.operations import Operations
from runtime_core.persistence import Database, upgrade
from runtime_core.publishing import publish_definitions
from runtime_core.worker import build_authored_worker, connect_temporal

from .conftest import ROOT, isolated_namespace

SECRET = "sk_live_9f8e7d6c5b4a3210"
ECHO = {"id": "echo", "version": 1, "name": "Echo", "payloadSchema": {"type": "object"},
        "steps": [{"id": "say", "type": "action.call",
                   "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n"}, "card": {"$expr": "payload.card"}}}}]}
FAIL = {"id": "fail", "version": 1, "name": "Fail", "payloadSchema": {"type": "object"},
        "steps": [{"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": {"$expr": "payload.card"}}}}]}
SOURCES = os.pathsep.join(str(ROOT / "packages" / p / "src") for p in ("runtime-core", "runtime-bootstrap", "worker", "domain-worker"))


@dataclass
class Span:
    """One received span."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    status: int
    status_message: str
    attributes: dict[str, Any]
    service: str


@dataclass
class Receiver:
    """What the OTLP receiver got."""

    url: str
    spans: list[Span] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@contextlib.contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A local OTLP/HTTP receiver: accepts ``POST /v1/traces`` (protobuf) and keeps the decoded spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

    received: list[Span] = []
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            paths.append(f"{self.path} {self.headers.get('Content-Type')}")
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                service = next((_value(a.value) for a in resource_spans.resource.attributes if a.key == "service.name"), "")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        received.append(Span(
                            name=span.name, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(), parent_id=span.parent_span_id.hex(), kind=span.kind,
                            status=span.status.code, status_message=span.status.message, attributes={a.key: _value(a.value) for a in span.attributes}, service=service,
                        ))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(url=f"http://127.0.0.1:{server.server_address[1]}", spans=received, requests=paths)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """Tracing on, as a process turns it on (``OTEL_EXPORTER_OTLP_ENDPOINT``), exporting to a local receiver."""
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        settings = RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        assert settings.tracing == "OTEL_EXPORTER_OTLP_ENDPOINT"
        assert tracing.configure_from_settings(settings, "wfr-test") and tracing.enabled()
        try:
            yield receiver
        finally:
            tracing.shutdown()


async def test_one_trace_follows_an_api_launch_into_the_runs_actions(traced: Receiver, temporal_server: DevServer, tmp_path: Path) -> None:
    """Request span → StartWorkflow → (RunWorkflow,) StartActivity → RunActivity → wfr.action in one trace, by OTLP; ids only, never payload values."""
    database = Database(f"sqlite:///{tmp_path / 'wfr.db'}")
    await upgrade(database)
    with isolated_namespace() as namespace:
        client = await connect_temporal(RuntimeSettings(temporal_address=temporal_server.address, temporal_namespace=namespace))
        assert len(client.config()["interceptors"]) == 1
        worker = build_authored_worker(client, database)
        ops = Operations(database, client)
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        author = (await ops.create_token(tenant, "author", "author")).token
        operator = (await ops.create_token(tenant, "operator", "operator")).token
        try:
            async with worker, httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ops)), base_url="http://wfr.test") as http:
                published = await http.post("/api/v1/definitions", json={"definitions": [ECHO, FAIL]}, headers={"Authorization": f"Bearer {author}"})
                assert published.status_code == 201, published.text
                runs = {}
                for workflow_id in ("echo", "fail"):
                    launched = await http.post("/api/v1/runs", json={"workflowId": workflow_id, "payload": {"n": 1, "card": SECRET}}, headers={"Authorization": f"Bearer {operator}"})
                    assert launched.status_code == 201, launched.text
                    runs[workflow_id] = launched.json()["runId"]
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.get_workflow_handle(f"workflow-runtime-v2:run:{runs[workflow_id]}").result(), 60)
                read = await http.get(f"/api/v1/runs/{runs['echo']}", headers={"Authorization": f"Bearer {operator}"})
                assert read.status_code == 200 and read.json()["status"] == "SUCCEEDED", read.text
                assert (await http.get(f"/api/v1/runs/{runs['fail']}", headers={"Authorization": f"Bearer {operator}"})).json()["status"] == "FAILED"
        finally:
            await database.dispose()
    tracing.shutdown()  # flushes the batch processor to the receiver

    assert traced.requests and all(r.startswith("/v1/traces application/x-protobuf") for r in traced.requests), traced.requests
    spans = traced.spans
    assert {s.service for s in spans} == {"wfr-test"}
    by_id = {s.span_id: s for s in spans}

    def chain(span: Span) -> list[str]:
        names = [span.name]
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            names.append(span.name)
        return names[::-1]

    for workflow_id, step, action in (("echo", "root.steps[0]", "core.echo"), ("fail", "root.steps[0]", "core.fail")):
        run_id = runs[workflow_id]
        [action_span] = [s for s in spans if s.name == f"wfr.action {action}" and s.attributes.get("wfr.run_id") == run_id]
        failed = {"error.type": "ActionError"} if workflow_id == "fail" else {}
        assert action_span.attributes == {"wfr.run_id": run_id, "wfr.step_path": step, "wfr.action_id": action, "wfr.tenant": tenant, "wfr.attempt": 1, **failed}, action_span.attributes
        # the SDK's TracingInterceptor records workflow spans as zero-length spans beside each other
        # under the span that started the workflow: RunWorkflow is StartActivity's sibling
        assert chain(action_span) == [
            "POST /api/v1/runs", f"StartWorkflow:{WORKFLOW_TYPE}", f"StartActivity:{ACTION_ACTIVITY}", f"RunActivity:{ACTION_ACTIVITY}", f"wfr.action {action}",
        ], chain(action_span)
        request = next(s for s in spans if s.trace_id == action_span.trace_id and not s.parent_id)
        assert request.name == "POST /api/v1/runs" and request.kind == 2  # SERVER
        assert request.attributes == {"http.request.method": "POST", "http.route": "/api/v1/runs", "http.response.status_code": 201}, request.attributes
        [start] = [s for s in spans if s.parent_id == request.span_id]
        assert start.name == f"StartWorkflow:{WORKFLOW_TYPE}" and start.attributes["temporalWorkflowID"] == f"workflow-runtime-v2:run:{run_id}"
        in_trace = [s for s in spans if s.trace_id == request.trace_id]
        assert {s.name for s in in_trace if s.parent_id == start.span_id} >= {f"RunWorkflow:{WORKFLOW_TYPE}", f"StartActivity:{ACTION_ACTIVITY}"}
        assert len({s.trace_id for s in spans if s.attributes.get("temporalWorkflowID") == start.attributes["temporalWorkflowID"]}) == 1
    echo_span = next(s for s in spans if s.name == "wfr.action core.echo")
    fail_span = next(s for s in spans if s.name == "wfr.action core.fail")
    assert echo_span.status == 0  # UNSET
    assert fail_span.status == 2 and fail_span.status_message == "ActionError", (fail_span.status, fail_span.status_message)  # ERROR with the category only
    # the read: named by its route template, never by the path with the run id
    reads = [s for s in spans if s.name.startswith("GET ")]
    assert len(reads) == 2 and {s.name for s in reads} == {"GET /api/v1/runs/{runId}"}, [s.name for s in reads]
    assert all(s.attributes == {"http.request.method": "GET", "http.route": "/api/v1/runs/{runId}", "http.response.status_code": 200} for s in reads)
    # payload values (and the failing action's message, which quotes one) never reach a span
    for span in spans:
        assert SECRET not in span.name and SECRET not in span.status_message
        for value in span.attributes.values():
            assert SECRET not in str(value), (span.name, span.attributes)
    assert not any(runs["echo"] in s.name for s in spans)


def test_tracing_off_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off by default: no interceptor, no middleware, the action span is a shared no-op."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "WFR_TRACING"):
        monkeypatch.delenv(name, raising=False)
    settings = RuntimeSettings.from_env({})
    assert settings.tracing is None
    assert not tracing.configure_from_settings(settings, "workflow-worker")
    assert not tracing.enabled() and tracing.interceptors() == [] and tracing.tracer() is None
    span = tracing.action_span(run_id="r", step_path="s", action_id="a", tenant="t", attempt=1)
    assert span is tracing._NO_SPAN
    with span as current:
        assert current is None
    app = create_app(None)
    assert not any(m.cls.__name__ == "TracingMiddleware" for m in app.user_middleware)


def test_without_the_sdk_runtime_core_imports_and_a_configured_process_fails_clearly() -> None:
    """runtime-core without OpenTelemetry installed: it imports and runs untraced; configured, a worker exits 2 naming the variable and the extra."""
    block = "import sys; sys.modules.update(dict.fromkeys(('opentelemetry', 'opentelemetry.trace', 'opentelemetry.sdk'), None));"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFR_", "OTEL_"))} | {"PYTHONPATH": SOURCES}
    untraced = subprocess.run(
        [sys.executable, "-c", block + "import runtime_core.worker, runtime_core.activities, runtime_core.tracing as t, runtime_core.config as c;"
         "assert t.interceptors() == [] and not t.configure_from_settings(c.RuntimeSettings.from_env(), 'x');"
         "assert not [m for m in sys.modules if m.startswith('opentelemetry') and sys.modules[m] is not None]; print('ok')"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert untraced.returncode == 0 and "ok" in untraced.stdout, untraced.stderr
    worker = subprocess.run(
        [sys.executable, "-c", block + "from workflow_worker import main; main()"],
        env=env | {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, capture_output=True, text=True, timeout=60,
    )
    assert worker.returncode == 2, (worker.returncode, worker.stderr)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed: pip install 'runtime-core[otel]'" in worker.stderr, worker.stderr


def test_tracing_settings_are_validated() -> None:
    """WFR_TRACING and the OTLP endpoints: what turns tracing on, errors that name the variable, the docs row."""
    endpoint = "http://collector:4318"
    assert RuntimeSettings.from_env({}).tracing is None
    assert RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}).tracing == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces"}).tracing == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    assert RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "WFR_TRACING": "AUTO"}).tracing == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert RuntimeSettings.from_env({"WFR_TRACING": "otlp"}).tracing == "WFR_TRACING"
    assert RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "WFR_TRACING": "off"}).tracing is None
    assert RuntimeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SDK_DISABLED": "true"}).tracing is None
    assert RuntimeSettings.from_env({"WFR_TRACING": "otlp", "OTEL_SDK_DISABLED": "TRUE"}).tracing is None
    for env, name in (
        ({"WFR_TRACING": "jaeger"}, "WFR_TRACING must be auto, otlp or off"),
        ({"WFR_TRACING": ""}, "WFR_TRACING is set but empty"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://c:4317", "WFR_TRACING": "otlp"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be"),
    ):
        with pytest.raises(ConfigError, match=name):
            RuntimeSettings.from_env(env)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFR_", "OTEL_"))} | {"PYTHONPATH": SOURCES, "WFR_TRACING": "yes"}
    result = subprocess.run([sys.executable, "-c", "from workflow_worker import main; main()"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "WFR_TRACING" in result.stderr, result.stderr
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    default, meaning = SETTINGS_DOC["WFR_TRACING"]  # the table is rendered from SETTINGS_DOC
    assert f"| `WFR_TRACING` | `{default}` | {meaning} |" in operations


async def test_a_worker_process_traces_as_its_service_and_flushes_on_sigterm(temporal_server: DevServer, tmp_path: Path) -> None:
    """workflow-worker with OTEL_EXPORTER_OTLP_ENDPOINT: its action spans, as service workflow-worker, reach the receiver when it drains."""
    db_url = f"sqlite:///{tmp_path / 'worker.db'}"
    database = Database(db_url)
    await upgrade(database)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    assert (await publish_definitions(database, ActionRegistry.default(), tenant, [ECHO])).published
    with otlp_receiver() as receiver, isolated_namespace() as namespace:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WFR_", "OTEL_"))} | {
            "PYTHONPATH": SOURCES, "WFR_TEMPORAL_ADDRESS": temporal_server.address, "WFR_TEMPORAL_NAMESPACE": namespace, "WFR_DATABASE_URL": db_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "600000",  # only the exit's flush exports
        }
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", "from workflow_worker import main; main()"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            for _ in range(300):
                if f"polling task queue {TASK_QUEUE}" in log.read_text() or proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert "tracing on (OTEL_EXPORTER_OTLP_ENDPOINT)" in log.read_text(), log.read_text()
            client = await connect_temporal(RuntimeSettings(temporal_address=temporal_server.address, temporal_namespace=namespace))
            launched = await Launcher(client, database).launch(tenant, "echo", {"n": 2, "card": SECRET})
            await asyncio.wait_for(client.get_workflow_handle(launched.temporal_workflow_id).result(), 60)
            assert not receiver.spans  # still buffered
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            await database.dispose()
        [action] = [s for s in receiver.spans if s.name == "wfr.action core.echo"]
        assert action.service == "workflow-worker" and action.attributes["wfr.run_id"] == launched.run_id and action.attributes["wfr.tenant"] == tenant
        parent = next(s for s in receiver.spans if s.span_id == action.parent_id)
        assert parent.name == f"RunActivity:{ACTION_ACTIVITY}"  # a run started without a traced caller: the activity is the root
        assert all(SECRET not in str(v) for s in receiver.spans for v in s.attributes.values())
