"""Liveness and readiness, without authentication (for load balancers and orchestrators)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from runtime_bootstrap.api._deps import Ops
from runtime_bootstrap.api._models import Health, Readiness
from runtime_bootstrap.api._problems import problem_response
from runtime_core.operations import Operations
from runtime_core.persistence import current_revision, head_revision

__all__ = ["readiness_problems", "router"]

router = APIRouter(tags=["health"])

#: How long each readiness check may take.
CHECK_SECONDS = 5.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (it checks nothing else)."""
    return Health()


async def _database(ops: Operations) -> dict[str, str] | None:
    try:
        revision = await asyncio.wait_for(current_revision(ops.database), CHECK_SECONDS)
    except Exception as err:
        return {"code": "UNREACHABLE", "message": f"the database {ops.database.safe_url} did not answer ({type(err).__name__})"}
    head = head_revision()
    if revision != head:
        return {"code": "NOT_AT_HEAD", "message": f"the database is at migration {revision or 'none'}, the code needs {head}: run wfr db upgrade"}
    return None


async def _temporal(ops: Operations) -> dict[str, str] | None:
    try:
        client = ops.client
        serving = await asyncio.wait_for(client.service_client.check_health(timeout=timedelta(seconds=CHECK_SECONDS)), CHECK_SECONDS + 1)
    except Exception as err:
        return {"code": "UNREACHABLE", "message": f"Temporal did not answer ({type(err).__name__}); check WFR_TEMPORAL_ADDRESS"}
    if not serving:
        return {"code": "NOT_SERVING", "message": "Temporal answered that its workflow service is not serving"}
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace), timeout=timedelta(seconds=CHECK_SECONDS))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return {"code": "NO_NAMESPACE", "message": f"Temporal has no namespace {client.namespace!r}; check WFR_TEMPORAL_NAMESPACE"}
        return {"code": "UNREACHABLE", "message": f"Temporal did not describe namespace {client.namespace!r} ({err.status.name})"}
    return None


async def readiness_problems(ops: Operations) -> list[dict[str, str]]:
    """Every failing readiness check as ``{path, code, message}`` (``path`` names the check)."""
    found = await asyncio.gather(_database(ops), _temporal(ops))
    return [{"path": name, **problem} for name, problem in zip(("database", "temporal"), found, strict=True) if problem is not None]


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "A check failed: `errors` names each failing check (`database`, `temporal`)."}})
async def readyz(ops: Ops) -> Any:
    """The database is reachable with its migrations at head, and Temporal answers and has the namespace."""
    problems = await readiness_problems(ops)
    if problems:
        return problem_response(503, "not ready: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems), errors=problems, instance="/readyz")
    return Readiness(checks={"database": "ok", "temporal": "ok"})
