"""The launcher: the only way a root run starts."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from runtime_core.contract import SEMANTICS_VERSION, TASK_QUEUE, WORKFLOW_TYPE, ChildDefinition, MockSpec, RunInput, RunOptions, workflow_id_for_run
from runtime_core.dsl import definition_hash, schema_problems
from runtime_core.expressions import format_instant
from runtime_core.persistence import Database, DefinitionVersion, RunRow, WorkflowDefinitionRow, utcnow
from runtime_core.secrets import redact

__all__ = ["LaunchError", "LaunchedRun", "Launcher", "run_id_for_key"]


def run_id_for_key(tenant: str, idempotency_key: str) -> str:
    """The run id a launch with ``idempotency_key`` gets: the same for every retry of that launch."""
    return hashlib.sha256(f"{tenant}\x00{idempotency_key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LaunchError(ValueError):
    """A launch refused before anything was created; ``problems`` lists why."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        """Describe the refusal.

        Args:
            message: Summary naming what to fix.
            problems: Structured details (for payload validation: one per failing path).
        """
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class LaunchedRun:
    """A started run."""

    run_id: str
    tenant: str
    workflow_id: str
    workflow_version: int
    temporal_workflow_id: str
    temporal_run_id: str | None


class Launcher:
    """Creates the run row (pinned hash and semantics version), then starts the workflow."""

    def __init__(self, client: Client, database: Database, options: RunOptions | None = None) -> None:
        """Bind to a Temporal client and the database.

        Args:
            client: Connected Temporal client (namespace of the authored worker).
            database: Authoring and read-model database.
            options: Interpreter options carried by every run this launcher starts.
        """
        self.client = client
        self.database = database
        self.options = options or RunOptions()

    async def _pin_children(self, tenant: str, document: dict[str, Any]) -> dict[str, ChildDefinition]:
        """Every definition reachable through control.callWorkflow, pinned now (transitively)."""
        pinned: dict[str, ChildDefinition] = {}
        queue = _called(document)
        async with self.database.sessions() as session:
            while queue:
                wf_id, version = queue.pop()
                key = f"{wf_id}@{version}"
                if key in pinned:
                    continue
                row = await _load_version(session, tenant, wf_id, version)
                pinned[key] = ChildDefinition(definition=row.document, definition_hash=row.definition_hash)
                queue.extend(_called(row.document))
        return pinned

    async def cancel(self, tenant: str, run_id: str) -> None:
        """Operator cancel of a root run (its children are cancelled first by the interpreter).

        Raises:
            LaunchError: No such run for this tenant, or it has already ended.
        """
        async with self.database.sessions() as session:
            run = await session.get(RunRow, run_id)
        if run is None or run.tenant != tenant:
            raise LaunchError(f"run {run_id} not found for tenant {tenant!r}")
        if run.status in ("SUCCEEDED", "FAILED", "CANCELED"):
            raise LaunchError(f"run {run_id} has already ended {run.status}")
        await self.client.get_workflow_handle(workflow_id_for_run(run_id)).cancel()

    async def launch(
        self,
        tenant: str,
        workflow_id: str,
        payload: Any,
        *,
        version: int | None = None,
        mocks: dict[str, MockSpec] | None = None,
        trigger: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> LaunchedRun:
        """Validate and start a run of a published definition.

        Args:
            tenant: Owner of the run.
            workflow_id: Published workflow id.
            payload: Launch payload (a JSON object).
            version: Published version; the latest when omitted.
            mocks: Scenario action mocks carried by the run (and its children).
            trigger: What started the run (recorded on the run row).
            idempotency_key: Makes the launch idempotent: every launch with the same tenant and
                key is the same run (its id is derived from the key), started at most once, even
                when a previous attempt crashed between writing the run row and starting it.

        Raises:
            LaunchError: Not published, or the payload is invalid. Nothing was created.
        """
        if not isinstance(payload, dict):
            raise LaunchError(f"the payload must be a JSON object, not {type(payload).__name__}")
        async with self.database.sessions() as session:
            if version is None:
                head = (await session.execute(select(WorkflowDefinitionRow).where(WorkflowDefinitionRow.tenant == tenant, WorkflowDefinitionRow.workflow_id == workflow_id))).scalar_one_or_none()
                if head is None:
                    raise LaunchError(f"workflow {workflow_id!r} is not published for tenant {tenant!r}")
                version = head.latest_version
            row = await _load_version(session, tenant, workflow_id, version)
        schema = row.document.get("payloadSchema")
        if schema is not None:
            problems = schema_problems(schema, payload, "payload")
            if problems:
                raise LaunchError("the payload does not match payloadSchema: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems), problems)

        children = await self._pin_children(tenant, row.document)
        run_id = run_id_for_key(tenant, idempotency_key) if idempotency_key is not None else uuid.uuid4().hex
        now = utcnow()
        temporal_id = workflow_id_for_run(run_id)
        for _ in range(2):  # a concurrent launch with the same key may insert the row first
            try:
                async with self.database.sessions.begin() as session:
                    existing = await session.get(RunRow, run_id) if idempotency_key is not None else None
                    if existing is None:
                        session.add(
                            RunRow(
                                run_id=run_id, tenant=tenant, workflow_id=workflow_id, workflow_version=version, status="RUNNING", engine="temporal",
                                temporal_workflow_id=temporal_id, definition_hash=row.definition_hash, semantics_version=SEMANTICS_VERSION,
                                root_run_id=run_id, input=redact(payload), trigger=trigger, created_at=now, started_at=now, updated_at=now,
                            )
                        )
                break
            except IntegrityError:
                if idempotency_key is None:
                    raise
        if existing is not None:
            if existing.temporal_run_id is not None:
                return LaunchedRun(run_id, tenant, existing.workflow_id, existing.workflow_version, temporal_id, existing.temporal_run_id)
            # a previous launch with this key wrote the row, then did not record a start
            now = existing.created_at if existing.created_at.tzinfo else existing.created_at.replace(tzinfo=UTC)
        run_input = RunInput(
            run_id=run_id, tenant=tenant, workflow_id=workflow_id, workflow_version=version, definition=row.document,
            definition_hash=row.definition_hash, semantics_version=SEMANTICS_VERSION, payload=payload,
            started_at=format_instant(now), root_run_id=run_id, mocks=dict(mocks or {}), children=children, options=self.options,
        )
        handle: WorkflowHandle[Any, Any]
        try:
            # REJECT_DUPLICATE: a run id is started once, never again after it has ended
            handle = await self.client.start_workflow(
                WORKFLOW_TYPE, run_input, id=temporal_id, task_queue=TASK_QUEUE, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE
            )
            temporal_run_id = handle.first_execution_run_id or handle.result_run_id
        except WorkflowAlreadyStartedError:
            if idempotency_key is None:
                raise
            temporal_run_id = (await self.client.get_workflow_handle(temporal_id).describe()).run_id
        except BaseException:
            # No workflow, no run: remove the row so nothing half-written remains.
            async with self.database.sessions.begin() as session:
                await session.execute(delete(RunRow).where(RunRow.run_id == run_id, RunRow.temporal_run_id.is_(None)))
            raise
        async with self.database.sessions.begin() as session:
            run = await session.get(RunRow, run_id)
            if run is not None:
                run.temporal_run_id = temporal_run_id
        return LaunchedRun(run_id, tenant, workflow_id, version, temporal_id, temporal_run_id)


async def _load_version(session: AsyncSession, tenant: str, workflow_id: str, version: int) -> DefinitionVersion:
    """A published version whose stored document still matches its pinned hash.

    Raises:
        LaunchError: Not published for this tenant, or altered outside publishing.
    """
    row = (
        await session.execute(
            select(DefinitionVersion).where(DefinitionVersion.tenant == tenant, DefinitionVersion.workflow_id == workflow_id, DefinitionVersion.version == version)
        )
    ).scalar_one_or_none()
    if row is None:
        raise LaunchError(f"workflow {workflow_id!r} version {version} is not published for tenant {tenant!r}")
    if definition_hash(row.document) != row.definition_hash:
        raise LaunchError(f"workflow {workflow_id!r} version {version} no longer matches its pinned hash; the stored definition was altered outside publishing")
    return row


def _called(document: dict[str, Any]) -> list[tuple[str, int]]:
    """``(workflowId, workflowVersion)`` of every control.callWorkflow in a definition."""
    found: list[tuple[str, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "control.callWorkflow":
                found.append((node["workflowId"], node["workflowVersion"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document.get("steps", []))
    return found
