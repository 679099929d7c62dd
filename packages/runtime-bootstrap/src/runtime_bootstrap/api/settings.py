"""The tenant's settings: retention of ended runs and of the idempotency ledger."""

from __future__ import annotations

from fastapi import APIRouter

from runtime_bootstrap.api._deps import Admin, Ops
from runtime_core.operations import RetentionRequest, RetentionSettings

__all__ = ["router"]

router = APIRouter(tags=["settings"])


@router.get("/settings/retention", response_model=RetentionSettings)
async def get_retention(who: Admin, ops: Ops) -> RetentionSettings:
    """How long the tenant's ended runs and idempotency-ledger rows are kept (never set: runs forever, ledger 365 days)."""
    return await ops.get_tenant_settings(who.tenant)


@router.put("/settings/retention", response_model=RetentionSettings)
async def set_retention(body: RetentionRequest, who: Admin, ops: Ops) -> RetentionSettings:
    """Set the tenant's retention; the domain worker's housekeeping applies it on its next pass."""
    return await ops.set_retention(who.tenant, body.runRetentionDays, body.ledgerRetentionDays, actor=who.actor)
