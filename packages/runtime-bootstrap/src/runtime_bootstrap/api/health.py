"""Liveness and readiness, without authentication (for load balancers and orchestrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runtime_bootstrap.api._deps import Ops
from runtime_bootstrap.api._models import Health, Readiness
from runtime_bootstrap.api._problems import problem_response

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (it checks nothing else)."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "A check failed: `errors` names each failing check (`database`, `temporal`)."}})
async def readyz(ops: Ops) -> Any:
    """The database is reachable with its migrations at head, and Temporal answers and has the namespace."""
    problems = await ops.readiness_problems()
    if problems:
        return problem_response(503, "not ready: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems), errors=problems, instance="/readyz")
    return Readiness(checks={"database": "ok", "temporal": "ok"})
