"""Readiness: is the database reachable at the code's migration head, and does Temporal answer with our namespace."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.operations._base import OperationsBase
from runtime_core.persistence import current_revision, head_revision

__all__ = ["CHECK_SECONDS", "HealthChecks"]

#: How long each readiness check may take.
CHECK_SECONDS = 5.0


class HealthChecks(OperationsBase):
    """Readiness checks, shared by the API's ``/readyz`` and the worker processes' health endpoints."""

    async def readiness_problems(self) -> list[dict[str, str]]:
        """Every failing readiness check as ``{path, code, message}`` (``path`` names the check: ``database``, ``temporal``)."""
        found = await asyncio.gather(self._database_problem(), self._temporal_problem())
        return [{"path": name, **problem} for name, problem in zip(("database", "temporal"), found, strict=True) if problem is not None]

    async def _database_problem(self) -> dict[str, str] | None:
        try:
            revision = await asyncio.wait_for(current_revision(self.database), CHECK_SECONDS)
        except Exception as err:
            return {"code": "UNREACHABLE", "message": f"the database {self.database.safe_url} did not answer ({type(err).__name__})"}
        head = head_revision()
        if revision != head:
            return {"code": "NOT_AT_HEAD", "message": f"the database is at migration {revision or 'none'}, the code needs {head}: run wfr db upgrade"}
        return None

    async def _temporal_problem(self) -> dict[str, str] | None:
        client = self.client
        try:
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
