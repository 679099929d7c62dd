"""Workflow definitions: validate, publish (all or nothing), list workflows and their versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from runtime_bootstrap.api._common import whole
from runtime_bootstrap.api._deps import Author, Ops, Viewer
from runtime_core.dsl import MAX_VERSION
from runtime_core.operations import DefinitionsRequest, DefinitionSummary, Page, PublishResult, ValidationResult, VersionDetail, VersionSummary

__all__ = ["router"]

router = APIRouter(tags=["definitions"])

WorkflowId = Annotated[str, Path(alias="workflowId", description="The workflow's id.")]


@router.post("/definitions/validate", response_model=ValidationResult)
async def validate_definitions(body: DefinitionsRequest, who: Author, ops: Ops) -> ValidationResult:
    """Validate a batch as publishing would (every problem listed); nothing is stored."""
    return await ops.validate_definitions(who.tenant, body.definitions)


@router.post("/definitions", status_code=201, response_model=PublishResult)
async def publish_definitions(body: DefinitionsRequest, who: Author, ops: Ops) -> PublishResult:
    """Publish a batch, all or nothing (422 lists every problem); republishing identical content is a no-op (`created: false`)."""
    return await ops.publish(who.tenant, body.definitions)


@router.get("/definitions", response_model=Page[DefinitionSummary])
async def list_definitions(who: Viewer, ops: Ops) -> Page[DefinitionSummary]:
    """The tenant's workflows with their latest version, by id."""
    return whole(await ops.list_definitions(who.tenant))


@router.get("/definitions/{workflowId}/versions", response_model=Page[VersionSummary])
async def list_versions(workflow_id: WorkflowId, who: Viewer, ops: Ops) -> Page[VersionSummary]:
    """Every published version of a workflow, newest first."""
    return whole(await ops.list_versions(who.tenant, workflow_id))


@router.get("/definitions/{workflowId}/versions/{version}", response_model=VersionDetail)
async def get_version(workflow_id: WorkflowId, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], who: Viewer, ops: Ops) -> VersionDetail:
    """A published version with its definition document and hash."""
    return await ops.get_version(who.tenant, workflow_id, version)
