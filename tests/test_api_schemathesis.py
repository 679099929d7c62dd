"""Schemathesis against the app's own OpenAPI document, in process (ASGI), on a real stack.

For every operation, a fixed number of requests that fit the schema and as many that do not
(schemathesis' positive and negative generation, derandomized so that every run sends the same
requests) are sent with an admin token of a tenant that has a published workflow, runs, a task
and an event. Every answer must be below 500 and conform to the document: a documented status,
its content type, its schema and headers; a request that does not fit the schema must be refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runtime_bootstrap._stack import Stack
from runtime_bootstrap.api import create_app
from runtime_core.operations import LaunchRequest, Operations

from .test_api import ASK, ECHO, WAIT

#: Requests per operation and generation mode: 35 operations × 2 modes × 30 ≈ 2,000 requests, about 15 s per database.
EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance, response_schema_conformance,
          negative_data_rejection]
BASE = "http://wfr.test"


def _cases(strategy: Any, count: int) -> list[Any]:
    """``count`` cases drawn the same way on every run (derandomized, no example database)."""
    drawn: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case: Any) -> None:
        drawn.append(case)

    try:
        collect()
    except HypothesisException:  # nothing to generate (a negative case for an operation without inputs)
        pass
    return drawn[:count]


def _request(case: Any, token: str) -> dict[str, Any]:
    """The case as keyword arguments of ``httpx.AsyncClient.request``."""
    kwargs = case.as_transport_kwargs(base_url=BASE, headers={"Authorization": f"Bearer {token}"})
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        data = kwargs.pop("data")
        kwargs["content"] = data.encode() if isinstance(data, str) else data
    return {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params", "json", "content")}


async def _seed(stack: Stack, ops: Operations, tenant: str) -> None:
    await ops.publish(tenant, [ECHO, WAIT, ASK])
    for workflow, payload in (("echo", {"n": 1}), ("wait", {"key": "k"}), ("ask", {"what": "x"})):
        run, _ = await ops.launch_run(tenant, LaunchRequest(workflowId=workflow, payload=payload))
        if workflow == "echo":
            await asyncio.wait_for(stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run.runId}").result(), 60)


async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(stack: Stack) -> None:
    """No 5xx on any generated request; every answer conforms to the OpenAPI document."""
    ops = Operations(stack.database, stack.client, registry=stack.registry)
    tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
    token = (await ops.create_token(tenant, "admin", "schemathesis")).token
    await _seed(stack, ops, tenant)
    app = create_app(ops)
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    sent = 0
    statuses: dict[int, int] = {}
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=BASE, timeout=60) as http:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for case in _cases(operation.as_strategy(generation_mode=mode), EXAMPLES):
                    request = _request(case, token)
                    if mode is GenerationMode.NEGATIVE and any(value == [] or (isinstance(value, list) and len(value) == 1)
                                                               for value in (request.get("params") or {}).values()):
                        # an empty list sends nothing, and a one-item list sends `?name=item`, exactly as the scalar
                        # would: what arrives is not the negative case schemathesis meant
                        continue
                    try:
                        response = await http.request(**request)
                    except (UnicodeEncodeError, httpx.InvalidURL, httpx.UnsupportedProtocol):
                        continue  # a request no HTTP client can send (a header value outside Latin-1)
                    sent += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    try:
                        case.validate_response(response, checks=CHECKS, headers=request.get("headers"))
                    except FailureGroup as failure:
                        failures.append(f"{mode.value} {operation.label}: {request} → {response.status_code} {response.text[:300]}\n{str(failure)[:1500]}")
    elapsed = time.monotonic() - started
    print(f"schemathesis: {sent} requests in {elapsed:.0f}s, statuses {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} of {sent} requests failed:\n\n" + "\n\n".join(failures[:10])
    assert sent >= 1500 and statuses.get(200, 0) > 100 and statuses.get(422, 0) > 200
    assert not [code for code in statuses if code >= 500]


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
