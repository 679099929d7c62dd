"""The HTTP API through an HTTP client against the real app on a real stack (Temporal dev server, SQLite, PostgreSQL).

Every route: its happy path and each documented error status; tenant isolation for every route
with an id; problem+json everywhere; idempotency keys; pagination; ``wfr serve`` as a real process.
The last test checks that every route and every status the OpenAPI document promises was seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_bootstrap.api import create_app
from runtime_bootstrap.api._docs import render_routes, replace_generated
from runtime_bootstrap.api._openapi import METHODS
from runtime_core.operations import ROLES, Invalid, Operations
from runtime_core.persistence import Database, DefinitionVersion, RunRow, upgrade

from .conftest import ROOT

ECHO = {"id": "echo", "version": 1, "name": "Echo", "payloadSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [{"id": "say", "name": "Say it", "type": "action.call",
                   "config": {"actionId": "core.echo", "version": 1, "inputMapping": {"n": {"$expr": "payload.n"}, "card": {"$expr": "payload.card"}}, "saveAs": "vars.said"}}]}
WAIT = {"id": "wait", "version": 1, "name": "Wait", "steps": [
    {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event"}}}}]}
ASK = {"id": "ask", "version": 1, "name": "Ask", "steps": [{"id": "t", "type": "human.task", "config": {
    "taskType": "approve", "title": {"$expr": "'Approve ' & payload.what"}, "contextData": {"what": {"$expr": "payload.what"}},
    "formSchema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}]}
FAIL = {"id": "fail", "version": 1, "name": "Fail", "steps": [
    {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"message": "boom"}}}]}
PARENT = {"id": "parent", "version": 1, "name": "Parent", "steps": [
    {"id": "kid", "type": "control.callWorkflow", "workflowId": "echo", "workflowVersion": 1, "inputMapping": {"n": 7}}]}

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}

#: (method, path template) → statuses answered, for the last test of the module.
SEEN: dict[str, dict[tuple[str, str], set[int]]] = defaultdict(lambda: defaultdict(set))
_APP_DOCUMENT = create_app(None).openapi()


def _template_of(method: str, path: str) -> tuple[str, str] | None:
    for template, item in _APP_DOCUMENT["paths"].items():
        if method.lower() not in item:
            continue
        pattern = re.escape(template).replace(r"\{eventId\}", ".+")
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        if re.fullmatch(pattern, path):
            return method.upper(), template
    return None


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


class Api:
    """An HTTP client on the app, with a token per role for two tenants (``a`` and ``b``)."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient, ops: Operations, backend: str) -> None:
        self.stack = stack
        self.http = http
        self.ops = ops
        self.backend = backend
        self.tenants = {"a": _tenant(), "b": _tenant()}
        self.tokens: dict[tuple[str, str], str] = {}
        self.names: dict[tuple[str, str], str] = {}

    async def setup(self) -> None:
        for key, tenant in self.tenants.items():
            for role in ROLES:
                created = await self.ops.create_token(tenant, role, f"{role}-{key}")
                self.tokens[(key, role)] = created.token
                self.names[(key, role)] = created.name

    def actor(self, role: str, who: str = "a") -> str:
        return f"token:{self.names[(who, role)]}"

    async def call(self, method: str, path: str, *, role: str | None = "admin", who: str = "a", token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        elif role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[(who, role)]}"
        response = await self.http.request(method, path, headers=headers, **kwargs)
        found = _template_of(method, httpx.URL(path).path)
        if found is not None:
            SEEN[self.backend][found].add(response.status_code)
        assert response.status_code < 500, response.text
        return response

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        if status == 204:
            assert not response.content
            return None
        assert response.headers["content-type"] == "application/json", response.headers
        return response.json()

    async def problem(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        response = await self.call(method, path, **kwargs)
        return problem_of(response, status)


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of ``response``, checked for its shape."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert set(body) == PROBLEM_KEYS and body["status"] == status and body["type"].startswith("urn:wfr:problem:"), body
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["title"], str)
    for item in body["errors"]:
        assert set(item) == {"path", "code", "message"}, item
    return body


@pytest.fixture
async def api(stack: Stack) -> Any:
    """The app over the shared stack, and an HTTP client on it."""
    backend = "postgres" if stack.database.engine.dialect.name == "postgresql" else "sqlite"
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    transport = httpx.ASGITransport(app=create_app(ops))
    async with httpx.AsyncClient(transport=transport, base_url="http://wfr.test") as http:
        client = Api(stack, http, ops, backend)
        await client.setup()
        yield client


async def _published(api: Api, who: str = "a") -> None:
    await api.ok("POST", "/api/v1/definitions", 201, role="author", who=who, json={"definitions": [ECHO, WAIT, ASK, FAIL, PARENT]})


async def _end(api: Api, run_id: str, timeout: float = 60) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(api.stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result(), timeout)
    for _ in range(100):  # the read model is written by the same workflow task; wait for the row
        status = (await api.ok("GET", f"/api/v1/runs/{run_id}", role="viewer"))["status"]
        if status in ("SUCCEEDED", "FAILED", "CANCELED"):
            return
        await asyncio.sleep(0.1)


async def _launch(api: Api, workflow_id: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    run: dict[str, Any] = await api.ok("POST", "/api/v1/runs", 201, role="operator", json={"workflowId": workflow_id, "payload": payload}, **kwargs)
    return run


async def _until(check: Any, timeout: float = 30) -> Any:
    for _ in range(int(timeout / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


# ------------------------------------------------------------------------------------ serving


async def test_health_openapi_docs_and_unknown_routes(api: Api) -> None:
    """/healthz and /readyz need no token; the OpenAPI 3.1 document and docs are served; unknown routes are problems."""
    assert await api.ok("GET", "/healthz", role=None) == {"status": "ok"}
    assert await api.ok("GET", "/readyz", role=None) == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}
    document = await api.ok("GET", "/api/v1/openapi.json", role=None)
    assert document["openapi"].startswith("3.1") and document == _APP_DOCUMENT
    docs = await api.http.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    await api.problem("GET", "/api/v1/nothing-here", 404)
    body = await api.problem("DELETE", "/api/v1/runs", 405)
    assert "DELETE" in body["detail"]


async def test_readyz_names_the_failing_check(temporal_server: DevServer, tmp_path: Path) -> None:
    """An unmigrated database, an unreachable Temporal and a missing namespace each answer 503 naming the check."""
    from temporalio.client import Client

    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    gone = await Client.connect(f"127.0.0.1:{dead_port}", lazy=True)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(Operations(database, gone))), base_url="http://wfr.test") as http:
            body = problem_of(await http.get("/readyz"), 503)
            assert {(e["path"], e["code"]) for e in body["errors"]} == {("database", "NOT_AT_HEAD"), ("temporal", "UNREACHABLE")}
            await upgrade(database)
            live = await Client.connect(temporal_server.address, namespace="wfr-misc")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(Operations(database, live))), base_url="http://wfr.test") as ready:
                assert (await ready.get("/readyz")).status_code == 200
            body = problem_of(await http.get("/readyz"), 503)
            assert [e["path"] for e in body["errors"]] == ["temporal"] and "temporal" in body["detail"]
            nowhere = await Client.connect(temporal_server.address, namespace="no-such-namespace")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(Operations(database, nowhere))), base_url="http://wfr.test") as wrong:
                body = problem_of(await wrong.get("/readyz"), 503)
                assert [(e["path"], e["code"]) for e in body["errors"]] == [("temporal", "NO_NAMESPACE")] and "WFR_TEMPORAL_NAMESPACE" in body["detail"]
    finally:
        await database.dispose()


# ------------------------------------------------------------------------------ authentication


async def test_tokens_are_checked_and_roles_enforced(api: Api) -> None:
    """No, unknown, malformed or revoked token: 401 with WWW-Authenticate; too low a role: 403 naming the role needed."""
    for headers in ({}, {"Authorization": "Bearer wfr_nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = await api.call("GET", "/api/v1/runs", role=None, headers=headers)
        problem_of(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    await api.ok("GET", "/api/v1/runs", role="viewer")
    body = await api.problem("POST", "/api/v1/runs", 403, role="viewer", json={"workflowId": "echo", "payload": {}})
    assert "operator" in body["detail"]
    revoked = await api.ops.create_token(api.tenants["a"], "admin", "soon-revoked")
    await api.ok("GET", "/api/v1/runs", token=revoked.token)
    await api.ops.revoke_token(revoked.name, tenant=api.tenants["a"])
    await api.problem("GET", "/api/v1/runs", 401, token=revoked.token)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in _APP_DOCUMENT["paths"].items() for method, op in item.items() if method in METHODS]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_every_route_needs_a_token_and_its_role(api: Api) -> None:
    """Each /api/v1 operation (from the OpenAPI document): 401 without a token, 403 with the role just below its own."""
    checked = 0
    for method, path, operation in _operations():
        role = operation.get("x-wfr-role")
        if not path.startswith("/api/v1"):
            assert role is None
            continue
        assert role in ROLES, f"{method} {path} has no role"
        body = {} if method in ("POST", "PUT", "PATCH") else None
        await api.problem(method, _concrete(path), 401, role=None, json=body)
        if role != "viewer":
            lower = ROLES[ROLES.index(role) - 1]
            await api.problem(method, _concrete(path), 403, role=lower, json=body)
        checked += 1
    assert checked >= 30


# --------------------------------------------------------------------------------------- runs


async def test_launch_with_an_idempotency_key(api: Api) -> None:
    """201 and Location for a new run; the same key and body: 200 and the same run; another body: 409; every problem listed."""
    await _published(api)
    headers = {"Idempotency-Key": "order-1"}
    response = await api.call("POST", "/api/v1/runs", role="operator", headers=headers, json={"workflowId": "echo", "payload": {"n": 1}})
    assert response.status_code == 201, response.text
    first = response.json()
    assert response.headers["location"] == f"/api/v1/runs/{first['runId']}"
    assert first["workflowId"] == "echo" and first["workflowVersion"] == 1 and first["status"] in ("RUNNING", "SUCCEEDED")
    again = await api.ok("POST", "/api/v1/runs", 200, role="operator", headers=headers, json={"workflowId": "echo", "payload": {"n": 1}})
    assert again["runId"] == first["runId"]
    body = await api.problem("POST", "/api/v1/runs", 409, role="operator", headers=headers, json={"workflowId": "echo", "payload": {"n": 2}})
    assert "idempotency key" in body["detail"]
    # the key belongs to the tenant: tenant b's same key is another run
    await api.ok("POST", "/api/v1/definitions", 201, role="author", who="b", json={"definitions": [ECHO]})
    other = await api.ok("POST", "/api/v1/runs", 201, role="operator", who="b", headers=headers, json={"workflowId": "echo", "payload": {"n": 1}})
    assert other["runId"] != first["runId"]
    await api.problem("POST", "/api/v1/runs", 422, role="operator", headers={"Idempotency-Key": ""}, json={"workflowId": "echo", "payload": {}})
    body = await api.problem("POST", "/api/v1/runs", 422, role="operator", json={"workflowId": "echo", "payload": {"n": "x"}})
    assert [e["path"] for e in body["errors"]] == ["payload.n"]
    body = await api.problem("POST", "/api/v1/runs", 422, role="operator", json={"workflowId": "nope", "payload": {}})
    assert body["errors"][0]["path"] == "workflowId"
    body = await api.problem("POST", "/api/v1/runs", 422, role="operator", json={"payload": [], "version": "1", "extra": True})
    assert {(e["path"], e["code"]) for e in body["errors"]} >= {("workflowId", "MISSING"), ("extra", "EXTRA_FORBIDDEN")}
    assert len(body["errors"]) == 4, body  # every problem at once
    body = await api.problem("POST", "/api/v1/runs", 422, role="operator", content=b'{"workflowId": ', headers={"Content-Type": "application/json"})
    assert body["errors"][0]["code"] == "JSON_INVALID"
    await api.problem("POST", "/api/v1/runs", 422, role="operator", content=b"workflowId=echo", headers={"Content-Type": "application/x-www-form-urlencoded"})
    await _end(api, first["runId"])


async def test_runs_are_listed_paged_filtered_and_read_redacted(api: Api) -> None:
    """Keyset pages newest first; every filter; a run and each of its parts, redacted by the tenant's rules."""
    await _published(api)
    await api.ok("POST", "/api/v1/redaction-rules", 201, json={"kind": "key", "pattern": "card"})
    runs = [await _launch(api, "echo", {"n": i, "card": "4111"}) for i in range(5)]
    for run in runs:
        await _end(api, run["runId"])
    seen: list[str] = []
    page = await api.ok("GET", "/api/v1/runs", role="viewer", params={"status": "SUCCEEDED", "limit": 2})
    assert len(page["items"]) == 2 and page["nextCursor"]
    seen += [r["runId"] for r in page["items"]]
    while page["nextCursor"]:
        page = await api.ok("GET", "/api/v1/runs", role="viewer", params={"status": "SUCCEEDED", "limit": 2, "cursor": page["nextCursor"]})
        seen += [r["runId"] for r in page["items"]]
    assert seen == [r["runId"] for r in reversed(runs)]
    # filters: repeated and comma-separated statuses, workflow, instants, root only, stuck
    both = await api.ok("GET", "/api/v1/runs?status=SUCCEEDED&status=FAILED&workflowId=echo", role="viewer")
    assert len(both["items"]) == 5
    assert len((await api.ok("GET", "/api/v1/runs", role="viewer", params={"status": "RUNNING,WAITING"}))["items"]) == 0
    started = (await api.ok("GET", f"/api/v1/runs/{runs[2]['runId']}", role="viewer"))["startedAt"]
    after = await api.ok("GET", "/api/v1/runs", role="viewer", params={"startedAfter": started})
    assert [r["runId"] for r in after["items"]] == [r["runId"] for r in reversed(runs[2:])]
    before = await api.ok("GET", "/api/v1/runs", role="viewer", params={"startedBefore": started, "rootOnly": "true"})
    assert [r["runId"] for r in before["items"]] == [r["runId"] for r in reversed(runs[:2])]
    assert (await api.ok("GET", "/api/v1/runs", role="viewer", params={"stuck": "true"}))["items"] == []
    for params, path in (({"status": "BOGUS"}, "status"), ({"cursor": "not-a-cursor"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": 201}, "limit"),
                         ({"startedAfter": "yesterday"}, "startedAfter"), ({"rootOnly": "maybe"}, "rootOnly")):
        body = await api.problem("GET", "/api/v1/runs", 422, role="viewer", params=params)
        assert body["errors"][0]["path"] == path, body
    # one run and its parts
    run_id = runs[0]["runId"]
    detail = await api.ok("GET", f"/api/v1/runs/{run_id}", role="viewer")
    assert detail["status"] == "SUCCEEDED" and detail["payload"] == {"n": 0, "card": "[REDACTED]"} and detail["vars"]["said"]["card"] == "[REDACTED]"
    assert detail["output"] == {"payload": detail["payload"], "vars": detail["vars"]} and detail["diagnosis"] is None and detail["history"] == []
    assert detail["startedAt"].endswith("Z") and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", detail["startedAt"])
    steps = await api.ok("GET", f"/api/v1/runs/{run_id}/steps", role="viewer")
    assert steps["nextCursor"] is None and [(s["stepId"], s["name"], s["status"]) for s in steps["items"]] == [("say", "Say it", "SUCCEEDED")]
    assert steps["items"][0]["input"] == {"n": 0, "card": "[REDACTED]"}
    invocations = await api.ok("GET", f"/api/v1/runs/{run_id}/invocations", role="viewer")
    assert [i["actionId"] for i in invocations["items"]] == ["core.echo"] and invocations["items"][0]["output"]["card"] == "[REDACTED]"
    for part in ("waits", "tasks", "events", "children"):
        assert await api.ok("GET", f"/api/v1/runs/{run_id}/{part}", role="viewer") == {"items": [], "nextCursor": None}
    exported = await api.ok("GET", f"/api/v1/runs/{run_id}/export", role="viewer")
    assert exported["run"]["runId"] == run_id and exported["definition"]["definition"]["id"] == "echo" and len(exported["steps"]) == 1
    body = await api.problem("GET", f"/api/v1/runs/{run_id}/live", 409, role="viewer")
    assert "ended" in body["detail"]
    for path in ("", "/steps", "/waits", "/tasks", "/invocations", "/events", "/children", "/live", "/export"):
        await api.problem("GET", f"/api/v1/runs/{'0' * 32}{path}", 404, role="viewer")
    await api.problem("GET", f"/api/v1/runs/{'x' * 300}", 404, role="viewer")


async def test_waiting_runs_children_live_view_and_cancel(api: Api) -> None:
    """A waiting run's waits and live view; a child run; cancel (202, history with actor and reason, 409 once ended)."""
    await _published(api)
    parent = await _launch(api, "parent", {})
    await _end(api, parent["runId"])
    children = await api.ok("GET", f"/api/v1/runs/{parent['runId']}/children", role="viewer")
    assert [c["workflowId"] for c in children["items"]] == ["echo"] and children["items"][0]["parentRunId"] == parent["runId"]
    child_id = children["items"][0]["runId"]
    roots = await api.ok("GET", "/api/v1/runs", role="viewer", params={"rootOnly": "true", "workflowId": "echo"})
    assert child_id not in [r["runId"] for r in roots["items"]]
    waiting = await _launch(api, "wait", {"key": "k1"})
    waits = await _until(lambda: _items(api, f"/api/v1/runs/{waiting['runId']}/waits"))
    assert [(w["type"], w["status"], w["eventName"], w["correlationKey"]) for w in waits] == [("event", "WAITING", "go", "k1")]
    live = await api.ok("GET", f"/api/v1/runs/{waiting['runId']}/live", role="viewer")
    assert set(live) == {"currentStep", "currentWait", "summary"} and live["currentWait"] is not None
    accepted = await api.ok("POST", f"/api/v1/runs/{waiting['runId']}/cancel", 202, role="operator", json={"reason": "wrong customer"})
    assert accepted == {"runId": waiting["runId"], "status": "CANCEL_REQUESTED"}
    await _end(api, waiting["runId"])
    detail = await api.ok("GET", f"/api/v1/runs/{waiting['runId']}", role="viewer")
    assert detail["status"] == "CANCELED"
    assert [(h["action"], h["actor"], h["reason"]) for h in detail["history"]] == [("cancel", api.actor("operator"), "wrong customer")]
    body = await api.problem("POST", f"/api/v1/runs/{waiting['runId']}/cancel", 409, role="operator")
    assert "ended" in body["detail"]
    # a cancel without a body, and a child run (cancel its root)
    another = await _launch(api, "wait", {"key": "k2"})
    await api.ok("POST", f"/api/v1/runs/{another['runId']}/cancel", 202, role="operator")
    await api.problem("POST", f"/api/v1/runs/{child_id}/cancel", 409, role="operator", json={})
    await api.problem("POST", f"/api/v1/runs/{another['runId']}/cancel", 422, role="operator", json={"reason": 5})
    await _end(api, another["runId"])


async def _items(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.ok("GET", path, role="viewer", params=params))["items"]
    return items


async def test_bulk_cancel_reconcile_and_replay(api: Api) -> None:
    """Bulk cancel (dry run, by filter, by ids; admin only); reconcile after a terminate; replay from the original input."""
    await _published(api)
    runs = [await _launch(api, "wait", {"key": f"b{i}"}) for i in range(3)]
    await asyncio.sleep(0.5)
    dry = await api.ok("POST", "/api/v1/runs:cancel", json={"filter": {"workflowId": "wait"}, "dryRun": True})
    assert dry["dryRun"] and dry["matched"] == 3 and set(dry["canceled"]) == {r["runId"] for r in runs}
    done = await api.ok("POST", "/api/v1/runs:cancel", json={"runIds": [runs[0]["runId"], "nope"], "reason": "cleanup"})
    assert done["canceled"] == [runs[0]["runId"]] and done["skipped"] == [{"runId": "nope", "reason": "not found"}]
    body = await api.problem("POST", "/api/v1/runs:cancel", 422, json={})
    assert body["errors"][0]["code"] == "ONE_OF"
    await api.problem("POST", "/api/v1/runs:cancel", 422, json={"filter": {"status": "RUNNING"}})
    await api.problem("POST", "/api/v1/runs:cancel", 403, role="author", json={"runIds": []})
    # reconcile: Temporal's execution terminated outside the runtime
    for run in runs[1:]:
        await api.stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run['runId']}").terminate(reason="ops clean-up")
    one = await api.ok("POST", f"/api/v1/runs/{runs[1]['runId']}/reconcile", role="operator")
    assert one["checked"] == 1 and one["reconciled"][0]["status"] == "CANCELED" and one["reconciled"][0]["temporalStatus"] == "TERMINATED"
    assert "ops clean-up" in (await api.ok("GET", f"/api/v1/runs/{runs[1]['runId']}", role="viewer"))["error"]["message"]
    assert (await api.ok("POST", f"/api/v1/runs/{runs[1]['runId']}/reconcile", role="operator"))["reconciled"] == []
    everything = await api.ok("POST", "/api/v1/runs:reconcile")
    assert [r["runId"] for r in everything["reconciled"]] == [runs[2]["runId"]]
    await api.problem("POST", "/api/v1/runs:reconcile", 403, role="operator")
    await _end(api, runs[0]["runId"])
    # replay: the original input, not the redacted one shown
    await api.ok("POST", "/api/v1/redaction-rules", 201, json={"kind": "path", "pattern": "payload.card"})
    original = await _launch(api, "echo", {"n": 5, "card": "4111 1111"})
    await _end(api, original["runId"])
    assert (await api.ok("GET", f"/api/v1/runs/{original['runId']}", role="viewer"))["payload"]["card"] == "[REDACTED]"
    response = await api.call("POST", f"/api/v1/runs/{original['runId']}/replay", role="operator", json={"reason": "retry"})
    assert response.status_code == 201, response.text
    replay = response.json()
    assert response.headers["location"] == f"/api/v1/runs/{replay['runId']}" and replay["replayOfRunId"] == original["runId"]
    await _end(api, replay["runId"])
    async with api.stack.database.sessions() as session:
        row = await session.get(RunRow, replay["runId"])
    assert row is not None and row.launch_payload == {"n": 5, "card": "4111 1111"} and row.result["vars"]["said"]["card"] == "4111 1111"
    history = (await api.ok("GET", f"/api/v1/runs/{original['runId']}", role="viewer"))["history"]
    assert [(h["action"], h["actor"], h["detail"]["newRunId"]) for h in history] == [("replay", api.actor("operator"), replay["runId"])]
    edited = await api.ok("POST", f"/api/v1/runs/{original['runId']}/replay", 201, role="operator", json={"payload": {"n": 6}})
    await _end(api, edited["runId"])
    assert (await api.ok("GET", f"/api/v1/runs/{edited['runId']}", role="viewer"))["vars"]["said"]["n"] == 6
    body = await api.problem("POST", f"/api/v1/runs/{original['runId']}/replay", 422, role="operator", json={"payload": {"n": "six"}})
    assert body["errors"][0]["path"] == "payload.n"
    # a dry run reports the schema errors (or none) and launches nothing
    before = len((await api.ok("GET", "/api/v1/runs", role="viewer"))["items"])
    check = await api.ok("POST", f"/api/v1/runs/{original['runId']}/replay", 200, role="operator", json={"payload": {"n": "six"}, "dryRun": True})
    assert check["valid"] is False and [e["path"] for e in check["errors"]] == ["payload.n"]
    check = await api.ok("POST", f"/api/v1/runs/{original['runId']}/replay", 200, role="operator", json={"payload": {"n": 6}, "dryRun": True})
    assert check == {"valid": True, "errors": []}
    assert len((await api.ok("GET", "/api/v1/runs", role="viewer"))["items"]) == before
    # a version altered outside publishing can no longer be launched: 409
    async with api.stack.database.sessions.begin() as session:
        stored = (await session.execute(select(DefinitionVersion).where(DefinitionVersion.tenant == api.tenants["a"], DefinitionVersion.workflow_id == "echo"))).scalar_one()
        stored.document = {**stored.document, "name": "tampered"}
    body = await api.problem("POST", f"/api/v1/runs/{original['runId']}/replay", 409, role="operator")
    assert "pinned hash" in body["detail"]


async def test_resume_refuses_a_run_that_did_not_fail(api: Api) -> None:
    """Resume answers 409 for any status but FAILED."""
    await _published(api)
    run = await _launch(api, "echo", {"n": 1})
    await _end(api, run["runId"])
    body = await api.problem("POST", f"/api/v1/runs/{run['runId']}/resume", 409, role="operator", json={"reason": "try"})
    assert body["title"] == "Conflict"
    await api.problem("POST", f"/api/v1/runs/{run['runId']}/resume", 422, role="operator", json={"why": "x"})


async def test_resume_a_failed_run(api: Api) -> None:
    """A FAILED run is resumed: 202 with the run, and its history records who resumed it."""
    await _published(api)
    run = await _launch(api, "fail", {})
    await _end(api, run["runId"])
    assert (await api.ok("GET", f"/api/v1/runs/{run['runId']}", role="viewer"))["status"] == "FAILED"
    response = await api.call("POST", f"/api/v1/runs/{run['runId']}/resume", role="operator", json={"reason": "fixed"})
    assert response.status_code == 202, response.text
    assert response.json()["runId"] == run["runId"]
    history = (await api.ok("GET", f"/api/v1/runs/{run['runId']}", role="viewer"))["history"]
    assert ("resume", api.actor("operator"), "fixed") in [(h["action"], h["actor"], h["reason"]) for h in history]
    with contextlib.suppress(Exception):
        await api.stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run['runId']}").terminate()


# ------------------------------------------------------------------------------ events and tasks


async def test_events_are_sent_listed_and_read(api: Api) -> None:
    """202 and durable; a duplicate says so; listed newest first with deliveries; an id with '/' is addressable."""
    await _published(api)
    waiting = await _launch(api, "wait", {"key": "K"})
    await _until(lambda: _items(api, f"/api/v1/runs/{waiting['runId']}/waits"))
    accepted = await api.ok("POST", "/api/v1/events", 202, role="operator", json={"eventName": "go", "correlationKey": "K", "eventId": "inv/1", "payload": {"x": 1}})
    assert accepted == {"eventId": "inv/1", "accepted": True, "duplicate": False}
    again = await api.ok("POST", "/api/v1/events", 202, role="operator", json={"eventName": "go", "correlationKey": "K", "eventId": "inv/1", "payload": {}})
    assert again["duplicate"] is True
    await _end(api, waiting["runId"])
    event = await api.ok("GET", "/api/v1/events/inv/1", role="viewer")
    assert event["eventName"] == "go" and event["payload"] == {"x": 1} and event["receivedAt"].endswith("Z")
    assert [(d["kind"], d["runId"], d["status"]) for d in event["deliveries"]] == [("signal", waiting["runId"], "DELIVERED")]
    assert [e["eventId"] for e in await _items(api, f"/api/v1/runs/{waiting['runId']}/events")] == ["inv/1"]
    generated = await api.ok("POST", "/api/v1/events", 202, role="operator", json={"eventName": "other", "payload": None})
    page = await api.ok("GET", "/api/v1/events", role="viewer", params={"limit": 1})
    assert [e["eventId"] for e in page["items"]] == [generated["eventId"]] and page["nextCursor"]
    rest = await api.ok("GET", "/api/v1/events", role="viewer", params={"limit": 1, "cursor": page["nextCursor"]})
    assert [e["eventId"] for e in rest["items"]] == ["inv/1"]
    assert [e["eventId"] for e in await _items(api, "/api/v1/events", eventName="go", correlationKey="K")] == ["inv/1"]
    await api.problem("GET", "/api/v1/events/nope", 404, role="viewer")
    body = await api.problem("POST", "/api/v1/events", 422, role="operator", json={"eventName": "go", "payload": {"bad": "\x00"}})
    assert body["errors"][0]["path"] == "payload.bad"
    await api.problem("POST", "/api/v1/events", 422, role="operator", json={"eventName": "", "payload": {}})
    await api.problem("POST", "/api/v1/events", 403, role="viewer", json={"eventName": "go"})
    await api.problem("GET", "/api/v1/events", 422, role="viewer", params={"cursor": "bad"})


async def test_tasks_are_listed_read_completed_and_overridden(api: Api) -> None:
    """Default PENDING; every filter; 422 lists every violation and the task stays open; 409 once answered; admin override."""
    await _published(api)
    asks = [await _launch(api, "ask", {"what": f"invoice {i}"}) for i in range(2)]
    tasks = await _until(lambda: _filled(api, 2))
    assert {t["title"] for t in tasks} == {"Approve invoice 0", "Approve invoice 1"} and all(t["status"] == "PENDING" for t in tasks)
    mine = await _items(api, "/api/v1/tasks", runId=asks[0]["runId"], taskType="approve")
    assert [t["runId"] for t in mine] == [asks[0]["runId"]]
    assert await _items(api, "/api/v1/tasks", taskType="other") == []
    task_id = mine[0]["taskId"]
    detail = await api.ok("GET", f"/api/v1/tasks/{task_id}", role="viewer")
    assert detail["formSchema"]["required"] == ["ok"] and detail["contextData"] == {"what": "invoice 0"}
    assert [t["taskId"] for t in await _items(api, f"/api/v1/runs/{asks[0]['runId']}/tasks")] == [task_id]
    body = await api.problem("POST", f"/api/v1/tasks/{task_id}/complete", 422, role="operator", json={"response": {"ok": "yes", "extra": 1}})
    assert body["errors"] == [{"path": "response.ok", "code": "SCHEMA", "message": "'yes' is not of type 'boolean'"}]
    assert (await api.ok("GET", f"/api/v1/tasks/{task_id}", role="viewer"))["status"] == "PENDING"
    done = await api.ok("POST", f"/api/v1/tasks/{task_id}/complete", role="operator", json={"response": {"ok": True}})
    assert done["status"] == "COMPLETED" and done["completedBy"] == api.actor("operator") and done["response"] == {"ok": True}
    await api.problem("POST", f"/api/v1/tasks/{task_id}/complete", 409, role="operator", json={"response": {"ok": True}})
    await api.problem("POST", f"/api/v1/tasks/{task_id}/complete", 422, role="operator", json={})
    other = asks[1]
    other_task = (await _items(api, "/api/v1/tasks", runId=other["runId"]))[0]["taskId"]
    await api.problem("POST", f"/api/v1/tasks/{other_task}/override", 403, role="author", json={"response": {}, "reason": "x"})
    await api.problem("POST", f"/api/v1/tasks/{other_task}/override", 422, json={"response": {}})
    overridden = await api.ok("POST", f"/api/v1/tasks/{other_task}/override", json={"response": {"ok": "whatever"}, "reason": "customer called"})
    assert overridden["adminOverride"] is True and overridden["status"] == "COMPLETED"
    await api.problem("POST", f"/api/v1/tasks/{other_task}/override", 409, json={"response": {}, "reason": "again"})
    for run in asks:
        await _end(api, run["runId"])
    history = (await api.ok("GET", f"/api/v1/runs/{other['runId']}", role="viewer"))["history"]
    assert [(h["action"], h["actor"], h["reason"]) for h in history] == [("task-override", api.actor("admin"), "customer called")]
    assert await _items(api, "/api/v1/tasks") == []
    assert {t["taskId"] for t in await _items(api, "/api/v1/tasks", status="COMPLETED")} == {task_id, other_task}
    assert len(await _items(api, "/api/v1/tasks", status="ALL")) == 2
    page = await api.ok("GET", "/api/v1/tasks", role="viewer", params={"status": "ALL", "limit": 1})
    assert page["nextCursor"] and len(page["items"]) == 1
    await api.problem("GET", "/api/v1/tasks", 422, role="viewer", params={"status": "DONE"})
    await api.problem("GET", "/api/v1/tasks/nope", 404, role="viewer")


async def _filled(api: Api, count: int) -> list[dict[str, Any]] | None:
    items = await _items(api, "/api/v1/tasks")
    return items if len(items) >= count else None


# -------------------------------------------------------------------------------- definitions


async def test_definitions_and_task_definitions(api: Api) -> None:
    """Validate stores nothing; publish is all or nothing with every problem; versions read back; task types registered."""
    bad = {"id": "bad", "version": 1, "name": "b", "steps": [{"id": "x", "type": "action.call", "config": {"actionId": "nope", "version": 1}}]}
    result = await api.ok("POST", "/api/v1/definitions/validate", role="author", json={"definitions": [ECHO, bad]})
    assert result["valid"] is False and [p["code"] for p in result["problems"]] == ["ACTION_NOT_REGISTERED"]
    assert (await api.ok("POST", "/api/v1/definitions/validate", role="author", json={"definitions": [ECHO]}))["valid"] is True
    await api.problem("POST", "/api/v1/definitions/validate", 422, role="author", json={"definitions": {"id": "x"}})
    assert await _items(api, "/api/v1/definitions") == []
    body = await api.problem("POST", "/api/v1/definitions", 422, role="author", json={"definitions": [ECHO, bad, {"id": 5}]})
    assert "ACTION_NOT_REGISTERED" in [e["code"] for e in body["errors"]] and len(body["errors"]) > 1
    await api.problem("POST", "/api/v1/definitions", 403, role="operator", json={"definitions": [ECHO]})
    await api.problem("POST", "/api/v1/definitions", 422, role="author", json={"definitions": "x"})
    published = await api.ok("POST", "/api/v1/definitions", 201, role="author", json={"definitions": [ECHO]})
    assert [(v["workflowId"], v["version"], v["created"]) for v in published["published"]] == [("echo", 1, True)]
    again = await api.ok("POST", "/api/v1/definitions", 201, role="author", json={"definitions": [ECHO]})
    assert again["published"][0]["created"] is False
    await api.ok("POST", "/api/v1/definitions", 201, role="author", json={"definitions": [{**ECHO, "version": 2, "name": "Echo 2"}]})
    listed = await _items(api, "/api/v1/definitions")
    assert [(d["workflowId"], d["latestVersion"]) for d in listed] == [("echo", 2)]
    versions = await _items(api, "/api/v1/definitions/echo/versions")
    assert [v["version"] for v in versions] == [2, 1]
    version = await api.ok("GET", "/api/v1/definitions/echo/versions/1", role="viewer")
    assert version["definition"]["name"] == "Echo" and version["hash"] == published["published"][0]["hash"] and version["publishedAt"].endswith("Z")
    await api.problem("GET", "/api/v1/definitions/echo/versions/3", 404, role="viewer")
    await api.problem("GET", "/api/v1/definitions/nope/versions", 404, role="viewer")
    await api.problem("GET", "/api/v1/definitions/echo/versions/0", 422, role="viewer")
    await api.problem("GET", "/api/v1/definitions/echo/versions/one", 422, role="viewer")
    registered = await api.ok("POST", "/api/v1/task-definitions", 201, role="author", json={"taskType": "approve", "formSchema": {"type": "object"}})
    assert registered == {"taskType": "approve"}
    await api.problem("POST", "/api/v1/task-definitions", 422, role="author", json={"taskType": "approve", "formSchema": {"type": "nonsense"}})
    await api.problem("POST", "/api/v1/task-definitions", 403, role="operator", json={"taskType": "approve", "formSchema": {}})


async def test_redaction_rules_are_managed_by_admins(api: Api) -> None:
    """List, add (201; an identical rule comes back as it is), remove (204, then 404); invalid rules 422; admin only."""
    assert await api.ok("GET", "/api/v1/redaction-rules") == {"items": [], "nextCursor": None}
    rule = await api.ok("POST", "/api/v1/redaction-rules", 201, json={"kind": "path", "pattern": "vars.*.ssn"})
    assert rule["pattern"] == "vars.*.ssn" and rule["createdBy"] == api.actor("admin")
    assert (await api.ok("POST", "/api/v1/redaction-rules", 201, json={"kind": "path", "pattern": "vars.*.ssn"}))["id"] == rule["id"]
    assert [r["id"] for r in (await api.ok("GET", "/api/v1/redaction-rules"))["items"]] == [rule["id"]]
    body = await api.problem("POST", "/api/v1/redaction-rules", 422, json={"kind": "path", "pattern": "nowhere.x"})
    assert body["errors"][0]["path"] == "pattern"
    await api.problem("POST", "/api/v1/redaction-rules", 422, json={"kind": "regex", "pattern": ".*"})
    await api.problem("GET", "/api/v1/redaction-rules", 403, role="author")
    await api.ok("DELETE", f"/api/v1/redaction-rules/{rule['id']}", 204)
    await api.problem("DELETE", f"/api/v1/redaction-rules/{rule['id']}", 404)
    await api.problem("DELETE", "/api/v1/redaction-rules/zero", 422)


async def _schedule(api: Api, who: str = "a", workflow_id: str = "echo") -> str:
    """A trigger schedule of tenant ``who`` as publishing makes them (id scheme and memo of runtime_core.schedules).

    Its cron never comes due in a test and its fire starts a workflow on a queue nobody polls:
    the routes act on the schedule, not on what a fire launches.
    """
    trigger = {"type": "recurring", "cron": "0 3 1 1 *", "timezone": "UTC"}
    schedule_id = f"wfr:{api.tenants[who]}:{workflow_id}:{uuid.uuid4().hex[:12]}"
    await api.stack.client.create_schedule(schedule_id, Schedule(
        action=ScheduleActionStartWorkflow("wfr-test-never-run", id=f"fire-{schedule_id}", task_queue="wfr-test-nobody-polls"),
        spec=ScheduleSpec(cron_expressions=[trigger["cron"]], time_zone_name="UTC")),
        memo={"tenant": api.tenants[who], "workflowId": workflow_id, "trigger": trigger, "triggerKey": schedule_id.rsplit(":", 1)[1]})
    await _until(lambda: _listed(api, schedule_id, who), timeout=30)
    return schedule_id


async def _listed(api: Api, schedule_id: str, who: str) -> bool:
    items = (await api.ok("GET", "/api/v1/schedules", role="viewer", who=who))["items"]
    return any(i["scheduleId"] == schedule_id for i in items)


async def test_schedules_are_listed_paused_unpaused_and_fired(api: Api) -> None:
    """The tenant's trigger schedules: list (with a workflow filter), show, pause (409 twice), unpause (409 when not paused), fire now."""
    schedule_id = await _schedule(api)
    try:
        listed = await api.ok("GET", "/api/v1/schedules", role="viewer", params={"workflowId": "echo"})
        (view,) = [i for i in listed["items"] if i["scheduleId"] == schedule_id]
        assert view["workflowId"] == "echo" and view["trigger"]["cron"] == "0 3 1 1 *" and not view["paused"] and view["nextFires"]
        assert (await api.ok("GET", "/api/v1/schedules", role="viewer", params={"workflowId": "other"}))["items"] == []
        path = f"/api/v1/schedules/{schedule_id}"
        assert (await api.ok("GET", path, role="viewer"))["scheduleId"] == schedule_id
        paused = await api.ok("POST", f"{path}/pause", role="operator", json={"reason": "maintenance"})
        assert paused["paused"] and paused["note"] == f"paused by {api.actor('operator')}: maintenance"
        assert "already paused" in (await api.problem("POST", f"{path}/pause", 409, role="operator"))["detail"]
        assert not (await api.ok("POST", f"{path}/unpause", role="operator"))["paused"]
        assert "is not paused" in (await api.problem("POST", f"{path}/unpause", 409, role="operator"))["detail"]
        fired = await api.ok("POST", f"{path}/trigger", 202, role="operator")
        assert fired["scheduleId"] == schedule_id
        for _ in range(100):
            if (await api.ok("GET", path, role="viewer"))["fires"] == 1:
                break
            await asyncio.sleep(0.1)
        assert (await api.ok("GET", path, role="viewer"))["fires"] == 1
        for missing in ("wfr:nobody:echo:0123456789ab", "not-a-trigger-schedule", f"wfr:{api.tenants['a']}:echo:000000000000"):
            await api.problem("GET", f"/api/v1/schedules/{missing}", 404, role="viewer")
            await api.problem("POST", f"/api/v1/schedules/{missing}/pause", 404, role="operator")
            await api.problem("POST", f"/api/v1/schedules/{missing}/unpause", 404, role="operator")
            await api.problem("POST", f"/api/v1/schedules/{missing}/trigger", 404, role="operator")
        await api.problem("POST", f"{path}/pause", 422, role="operator", json={"reason": "r" * 2001})
        await api.problem("GET", "/api/v1/schedules", 422, role="viewer", params={"workflowId": "w" * 201})
        await api.problem("GET", "/api/v1/schedules", 422, role="viewer", params={"workflowId": "Not An Id"})
        await api.problem("GET", "/api/v1/schedules", 422, role="viewer", params=[("workflowId", "echo"), ("workflowId", "other")])
    finally:
        await api.stack.client.get_schedule_handle(schedule_id).delete()


async def test_retention_settings_are_managed_by_admins(api: Api) -> None:
    """GET shows the defaults (runs forever, ledger 365 days), PUT sets them per tenant (422 out of 1–36500); admin only."""
    assert await api.ok("GET", "/api/v1/settings/retention") == {"tenant": api.tenants["a"], "runRetentionDays": None, "ledgerRetentionDays": 365,
                                                                "updatedAt": None, "updatedBy": None}
    put = await api.ok("PUT", "/api/v1/settings/retention", json={"runRetentionDays": 30, "ledgerRetentionDays": 400})
    assert (put["runRetentionDays"], put["ledgerRetentionDays"], put["updatedBy"]) == (30, 400, api.actor("admin")) and put["updatedAt"]
    assert await api.ok("GET", "/api/v1/settings/retention") == put
    assert (await api.ok("GET", "/api/v1/settings/retention", who="b"))["runRetentionDays"] is None  # another tenant's are its own
    forever = await api.ok("PUT", "/api/v1/settings/retention", json={"runRetentionDays": None})
    assert (forever["runRetentionDays"], forever["ledgerRetentionDays"]) == (None, 365)
    for bad in ({"runRetentionDays": 0}, {"runRetentionDays": 36501}, {"runRetentionDays": "30"}, {"runRetentionDays": 1, "ledgerRetentionDays": 0}, {}):
        body = await api.problem("PUT", "/api/v1/settings/retention", 422, json=bad)
        assert body["errors"] and body["errors"][0]["path"] in ("runRetentionDays", "ledgerRetentionDays"), body
    await api.problem("GET", "/api/v1/settings/retention", 403, role="author")


async def test_text_the_runtime_cannot_store_is_refused(api: Api) -> None:
    """NUL and lone surrogates in a body, a query or a path answer 422 naming the place, on both databases."""
    await _published(api)
    run = await _launch(api, "wait", {"key": "nul"})
    body = await api.problem("POST", f"/api/v1/runs/{run['runId']}/cancel", 422, role="operator", json={"reason": "a\x00b"})
    assert body["errors"][0]["path"] == "reason"
    body = await api.problem("POST", f"/api/v1/runs/{run['runId']}/cancel", 422, role="operator",
                             content=b'{"reason": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert body["errors"][0]["path"] == "reason" and "surrogate" in body["errors"][0]["message"]
    body = await api.problem("GET", "/api/v1/runs", 422, role="viewer", params={"workflowId": "a\x00"})
    assert body["errors"][0]["path"] == "workflowId"
    for method, path, _ in _operations():
        if "{" in path:
            body = await api.problem(method, re.sub(r"\{[^}]+\}", "a%00b", path), 422)
            assert body["errors"][0]["code"] in ("INVALID_VALUE", "INT_PARSING"), body
    await api.problem("POST", "/api/v1/runs", 422, role="operator", content=b'{"workflowId": "echo", "payload": {"n": NaN}}', headers={"Content-Type": "application/json"})
    big = b'{"workflowId": "echo", "payload": {"n": ' + b"9" * 5000 + b"}}"
    await api.problem("POST", "/api/v1/runs", 422, role="operator", content=big, headers={"Content-Type": "application/json"})
    await api.ok("POST", f"/api/v1/runs/{run['runId']}/cancel", 202, role="operator")
    await _end(api, run["runId"])


async def test_handcrafted_cursors_instants_and_long_actors_are_not_server_errors(api: Api) -> None:
    """Cursors with the wrong parts, instants at the ends of the calendar, the longest token name: 4xx or success, never 500."""
    import base64
    import json

    def cursor(*parts: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")

    assert (await api.ok("GET", "/api/v1/runs", role="viewer", params={"cursor": cursor("2026-01-01T00:00:00.000Z", "zzzz")}))["items"] == []
    for path in ("/api/v1/runs", "/api/v1/events", "/api/v1/tasks"):
        for bad in (cursor(1, "x"), cursor([], {}), cursor("0001-01-01T00:00:00+05:00", 1), cursor("x")):
            await api.problem("GET", path, 422, role="viewer", params={"cursor": bad})
        # an id part of the wrong type (a number for a run or task id, text or a huge number for an event row) is refused
        for wrong in (cursor("2026-01-01T00:00:00Z", 10**30), cursor("2026-01-01T00:00:00Z", 5 if path != "/api/v1/events" else "5")):
            body = await api.problem("GET", path, 422, role="viewer", params={"cursor": wrong})
            assert body["errors"][0]["code"] == "INVALID_CURSOR", body
    for instant in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-01-01T00:00:00"):
        body = await api.problem("GET", "/api/v1/runs", 422, role="viewer", params={"startedAfter": instant})
        assert body["errors"][0]["code"] == "INVALID_INSTANT"
    await _published(api)
    longest = await api.ops.create_token(api.tenants["a"], "operator", "n" * 194)
    run = await _launch(api, "wait", {"key": "long"})
    await api.ok("POST", f"/api/v1/runs/{run['runId']}/cancel", 202, token=longest.token, json={"reason": "r" * 2000})
    await _end(api, run["runId"])
    assert (await api.ok("GET", f"/api/v1/runs/{run['runId']}", role="viewer"))["history"][0]["actor"] == "token:" + "n" * 194
    with pytest.raises(Invalid):
        await api.ops.create_token(api.tenants["a"], "operator", "n" * 195)


# ---------------------------------------------------------------------------- tenant isolation


async def test_another_tenants_resources_are_not_found(api: Api) -> None:
    """For every route with an id, tenant b's admin gets 404 for tenant a's resource; b's lists never show a's."""
    await _published(api)
    done = await _launch(api, "echo", {"n": 1})
    asking = await _launch(api, "ask", {"what": "x"})
    await _end(api, done["runId"])
    task_id = (await _until(lambda: _filled(api, 1)))[0]["taskId"]
    await api.ok("POST", "/api/v1/events", 202, role="operator", json={"eventName": "go", "eventId": "iso-1", "payload": {}})
    rule = await api.ok("POST", "/api/v1/redaction-rules", 201, json={"kind": "key", "pattern": "secret*"})
    schedule_id = await _schedule(api)
    ids = {"runId": done["runId"], "taskId": task_id, "eventId": "iso-1", "workflowId": "echo", "version": "1", "ruleId": str(rule["id"]), "scheduleId": schedule_id}
    bodies = {"complete": {"response": {"ok": True}}, "override": {"response": {}, "reason": "x"}, "replay": {}, "cancel": {}, "resume": {}}
    checked = set()
    for method, path, _ in _operations():
        if "{" not in path:
            continue
        concrete = re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], path)
        body = bodies.get(path.rsplit("/", 1)[-1]) if method == "POST" else None
        if path.endswith("/cancel"):
            concrete = concrete.replace(done["runId"], asking["runId"])  # an open run: a's own token could cancel it
        await api.problem(method, concrete, 404, who="b", json=body)
        checked.add((method, path))
        # a's own token reaches the same resource (so the 404 is the tenant, not the id)
        if method == "GET" and not path.endswith("/live"):
            await api.ok(method, concrete, role="viewer")
    assert len(checked) == sum(1 for _, path, _ in _operations() if "{" in path) >= 20
    for path in ("/api/v1/runs", "/api/v1/tasks?status=ALL", "/api/v1/events", "/api/v1/definitions", "/api/v1/redaction-rules", "/api/v1/schedules"):
        assert (await api.ok("GET", path, who="b"))["items"] == [], path
    assert (await api.ok("POST", "/api/v1/runs:cancel", who="b", json={"runIds": [asking["runId"]], "dryRun": True}))["skipped"] == [
        {"runId": asking["runId"], "reason": "not found"}]
    assert (await api.ok("POST", "/api/v1/runs:reconcile", who="b"))["checked"] == 0
    # still there and untouched for a
    assert (await api.ok("GET", f"/api/v1/tasks/{task_id}", role="viewer"))["status"] == "PENDING"
    assert [r["id"] for r in (await api.ok("GET", "/api/v1/redaction-rules"))["items"]] == [rule["id"]]
    assert not (await api.ok("GET", f"/api/v1/schedules/{schedule_id}", role="viewer"))["paused"]
    await api.stack.client.get_schedule_handle(schedule_id).delete()
    await api.ok("POST", f"/api/v1/runs/{asking['runId']}/cancel", 202, role="operator")
    await _end(api, asking["runId"])


# ------------------------------------------------------------------------------- wfr serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_wfr_serve_runs_as_a_process(temporal_server: DevServer, tmp_path: Path) -> None:
    """`wfr serve` against a running stack: /healthz, /readyz and an authenticated route; SIGTERM stops it cleanly."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    database = Database(url)
    await upgrade(database)
    token = (await Operations(database, None).create_token("acme", "viewer", "ci")).token
    await database.dispose()
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WFR_")},
           "WFR_TEMPORAL_ADDRESS": temporal_server.address, "WFR_TEMPORAL_NAMESPACE": "wfr-misc", "WFR_DATABASE_URL": url}
    wfr = str(Path(sys.executable).with_name("wfr"))
    process = subprocess.Popen([wfr, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert process.poll() is None, process.communicate()
                await asyncio.sleep(0.1)
            assert (await http.get("/readyz")).json()["status"] == "ready"
            runs = await http.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
            assert runs.status_code == 200 and runs.json() == {"items": [], "nextCursor": None}
            problem_of(await http.get("/api/v1/runs"), 401)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/api/v1" in out and out.rstrip().endswith("stopped"), out
    assert "GET /api/v1/runs" in out + err  # the access log
    # a port in use is one clear line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        failed = subprocess.run([wfr, "serve", "--port", str(taken)], env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and failed.stderr.startswith("Error: cannot serve the API on 127.0.0.1:") and "Traceback" not in failed.stderr


async def test_wfr_serve_needs_a_configured_stack(tmp_path: Path) -> None:
    """Without WFR_TEMPORAL_ADDRESS there is nothing to serve: one line saying what to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    result = subprocess.run([str(Path(sys.executable).with_name("wfr")), "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and "WFR_TEMPORAL_ADDRESS" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------- docs


def test_docs_api_md_route_table_matches_the_app() -> None:
    """docs/api.md's generated route table is the app's (regenerate with `python scripts/api_docs.py`)."""
    path = ROOT / "docs" / "api.md"
    text = path.read_text(encoding="utf-8")
    assert replace_generated(text, render_routes(_APP_DOCUMENT)) == text, "docs/api.md is stale: run python scripts/api_docs.py"


# ------------------------------------------------------------------------------------ coverage


def test_every_route_and_documented_status_was_exercised(request: pytest.FixtureRequest) -> None:
    """Every operation of the OpenAPI document answered each status it documents in the tests above (503 aside)."""
    module = request.node.module
    wanted = {name for name in dir(module) if name.startswith("test_") and name != request.node.originalname}
    selected = {item.originalname for item in request.session.items if item.module is module}
    if not wanted <= selected or request.session.testsfailed:
        pytest.skip("only meaningful when the whole module ran and passed")
    for backend, seen in SEEN.items():
        missing = []
        for method, path, operation in _operations():
            documented = {int(code) for code in operation["responses"]} - {503}
            answered = seen.get((method, path), set())
            if documented - answered:
                missing.append(f"{method} {path}: {sorted(documented - answered)}")
        assert not missing, f"{backend}: statuses never seen:\n" + "\n".join(missing)
