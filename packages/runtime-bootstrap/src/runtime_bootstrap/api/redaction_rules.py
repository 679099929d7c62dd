"""The tenant's redaction rules: what the API and CLI show as "[REDACTED]"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from runtime_bootstrap.api._common import whole
from runtime_bootstrap.api._deps import Admin, Ops
from runtime_core.operations import Page, RedactionRuleRequest, RedactionRuleView

__all__ = ["router"]

router = APIRouter(tags=["redaction-rules"])


@router.get("/redaction-rules", response_model=Page[RedactionRuleView])
async def list_redaction_rules(who: Admin, ops: Ops) -> Page[RedactionRuleView]:
    """The tenant's redaction rules, oldest first."""
    return whole(await ops.list_redaction_rules(who.tenant))


@router.post("/redaction-rules", status_code=201, response_model=RedactionRuleView)
async def add_redaction_rule(body: RedactionRuleRequest, who: Admin, ops: Ops) -> RedactionRuleView:
    """Add a rule: a `path` (`payload.card.*`) or a `key` pattern (`*password*`); an identical rule is returned as it is."""
    return await ops.add_redaction_rule(who.tenant, body, actor=who.actor)


@router.delete("/redaction-rules/{ruleId}", status_code=204, response_class=Response)
async def remove_redaction_rule(rule_id: Annotated[int, Path(alias="ruleId", ge=1, le=2**63 - 1)], who: Admin, ops: Ops) -> Response:
    """Remove a rule."""
    await ops.remove_redaction_rule(who.tenant, rule_id)
    return Response(status_code=204)
