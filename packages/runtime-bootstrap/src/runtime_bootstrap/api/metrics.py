"""``/metrics``: the runtime's Prometheus metrics on the API's own port (when metrics are on)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runtime_bootstrap.api._deps import Ops
from runtime_core.metrics import CONTENT_TYPE_LATEST, render_latest

__all__ = ["router"]

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(ops: Ops) -> Response:
    """The process's ``wfr_*`` metrics in Prometheus text format (no authentication, like the health checks)."""
    return Response(await render_latest(ops.database), media_type=CONTENT_TYPE_LATEST)
