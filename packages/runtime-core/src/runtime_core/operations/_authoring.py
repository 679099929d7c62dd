"""Definitions: validate and publish batches, list workflows and versions, register task types."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from runtime_core.ingress import TaskError, register_task_definition
from runtime_core.operations._base import MAX_INT32, OperationsBase, iso, storable
from runtime_core.operations._errors import Invalid, NotFound
from runtime_core.operations._schemas import (
    DefinitionSummary,
    Problem,
    PublishedVersionView,
    PublishResult,
    TaskDefinitionRequest,
    ValidationResult,
    VersionDetail,
    VersionSummary,
)
from runtime_core.persistence import DefinitionVersion, WorkflowDefinitionRow
from runtime_core.publishing import publish_definitions
from runtime_core.schedules import reconcile_schedules

log = logging.getLogger(__name__)

__all__ = ["Authoring", "version_detail"]


def _problem(p: dict[str, Any]) -> Problem:
    return Problem(workflowId=p.get("workflowId"), version=p.get("version"), path=p.get("stepPath"), stepId=p.get("stepId"),
                   code=p["code"], message=p["message"], severity=p["severity"])


async def version_detail(ops: OperationsBase, tenant: str, workflow_id: str, version: int) -> VersionDetail:
    """A published version with its definition.

    Raises:
        NotFound: Not published for this tenant.
    """
    if not storable(workflow_id) or len(workflow_id) > 200 or type(version) is not int or not 1 <= version <= MAX_INT32:
        raise NotFound(f"workflow {str(workflow_id)[:80]} version {version} not found")
    async with ops.database.sessions() as session:
        row = (await session.execute(select(DefinitionVersion).where(
            DefinitionVersion.tenant == tenant, DefinitionVersion.workflow_id == workflow_id, DefinitionVersion.version == version))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"workflow {workflow_id} version {version} not found")
    return VersionDetail(workflowId=row.workflow_id, version=row.version, hash=row.definition_hash, trigger=row.document.get("trigger"),
                         publishedAt=iso(row.published_at) or "", definition=row.document)


class Authoring(OperationsBase):
    """Definition and task-definition operations."""

    async def validate_definitions(self, tenant: str, documents: list[Any]) -> ValidationResult:
        """Validate a batch as publishing would, storing nothing."""
        outcome = await publish_definitions(self.database, self.registry, tenant, documents, dry_run=True)
        return ValidationResult(valid=outcome.published, problems=[_problem(p) for p in outcome.problems])

    async def publish(self, tenant: str, documents: list[Any]) -> PublishResult:
        """Publish a batch, all or nothing.

        Raises:
            Invalid: Any problem of severity ``error`` (every problem listed); nothing stored.
        """
        outcome = await publish_definitions(self.database, self.registry, tenant, documents)
        if not outcome.published:
            raise Invalid(
                f"nothing was published: {len(outcome.errors)} problem(s)",
                errors=[{"path": _where(p), "code": p["code"], "message": p["message"]} for p in outcome.errors],
            )
        problems = [_problem(p) for p in outcome.problems]
        if self._client is not None and outcome.versions:
            problems.extend(await self._reconcile_schedules(tenant, [v.workflow_id for v in outcome.versions]))
        return PublishResult(
            published=[PublishedVersionView(workflowId=v.workflow_id, version=v.version, hash=v.definition_hash, created=v.created) for v in outcome.versions],
            problems=problems,
        )

    async def _reconcile_schedules(self, tenant: str, workflow_ids: list[str]) -> list[Problem]:
        """Reconcile the published workflows' schedules; a failure is a warning (the domain worker's periodic reconcile converges)."""
        try:
            report = await reconcile_schedules(self.database, self.client, tenant=tenant, workflow_id=workflow_ids, task_queue=self.domain_task_queue)
            messages = report.problems
        except Exception as err:  # the publish is stored: never fail it for its schedules
            log.warning("reconciling the schedules of %s after publishing failed: %s", workflow_ids, err)
            messages = [f"{type(err).__name__}: {err}"]
        return [Problem(workflowId=None, version=None, path="trigger", stepId=None, code="SCHEDULE_RECONCILE_FAILED", severity="warning",
                        message=f"published, but the trigger's schedule is not in place yet ({m}); the domain worker's periodic reconcile retries it")
                for m in messages]

    async def list_definitions(self, tenant: str) -> list[DefinitionSummary]:
        """The tenant's workflows with their latest version, by id."""
        async with self.database.sessions() as session:
            rows = (await session.execute(select(WorkflowDefinitionRow).where(WorkflowDefinitionRow.tenant == tenant).order_by(WorkflowDefinitionRow.workflow_id))).scalars().all()
        return [DefinitionSummary(workflowId=r.workflow_id, name=r.name, description=r.description, latestVersion=r.latest_version, updatedAt=iso(r.updated_at) or "") for r in rows]

    async def list_versions(self, tenant: str, workflow_id: str) -> list[VersionSummary]:
        """Every published version of a workflow, newest first.

        Raises:
            NotFound: The workflow is not published for this tenant.
        """
        if not storable(workflow_id) or len(workflow_id) > 200:
            raise NotFound(f"workflow {str(workflow_id)[:80]!r} not found")
        async with self.database.sessions() as session:
            rows = (await session.execute(select(DefinitionVersion).where(DefinitionVersion.tenant == tenant, DefinitionVersion.workflow_id == workflow_id)
                                          .order_by(DefinitionVersion.version.desc()))).scalars().all()
        if not rows:
            raise NotFound(f"workflow {workflow_id} not found")
        return [VersionSummary(workflowId=r.workflow_id, version=r.version, hash=r.definition_hash, trigger=r.document.get("trigger"), publishedAt=iso(r.published_at) or "")
                for r in rows]

    async def get_version(self, tenant: str, workflow_id: str, version: int) -> VersionDetail:
        """A published version with its definition."""
        return await version_detail(self, tenant, workflow_id, version)

    async def register_task_type(self, tenant: str, request: TaskDefinitionRequest) -> dict[str, str]:
        """Register (or replace) a task type's form schema.

        Raises:
            Invalid: The schema cannot be used (every problem in the message).
        """
        try:
            await register_task_definition(self.database, tenant, request.taskType, request.formSchema)
        except TaskError as err:
            raise Invalid(str(err), errors=[{"path": "formSchema", "code": "INVALID_FORM_SCHEMA", "message": str(err)}]) from None
        return {"taskType": request.taskType}


def _where(p: dict[str, Any]) -> str:
    parts = [str(x) for x in (p.get("workflowId"), p.get("stepPath")) if x]
    return " ".join(parts) or "root"
