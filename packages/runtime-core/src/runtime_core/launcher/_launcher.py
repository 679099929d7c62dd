"""The launcher: the only way a root run starts."""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from runtime_core import metrics
from runtime_core.actions import ActionRegistry
from runtime_core.contract import SEMANTICS_VERSION, TASK_QUEUE, WORKFLOW_TYPE, ChildDefinition, MockSpec, RunInput, RunOptions, workflow_id_for_run
from runtime_core.dsl import MAX_ID_LENGTH, MAX_VERSION, canonical_json, definition_hash, schema_problems
from runtime_core.expressions import format_instant
from runtime_core.persistence import Database, DefinitionVersion, RunRow, WorkflowDefinitionRow, utcnow
from runtime_core.persistence._upsert import table_of
from runtime_core.secrets import redact
from runtime_core.values import MAX_RUN_INPUT_BYTES, ValueProblem, check_value, describe_size, safe_text

__all__ = ["LaunchConflict", "LaunchError", "LaunchedRun", "Launcher", "launch_fingerprint", "run_id_for_key"]

log = logging.getLogger(__name__)

# The launcher's statements, built once and run with parameters through Database.first/write
# (one thread hand-off each on SQLite; docs/performance.md).
_RUNS = table_of(RunRow)
_VERSIONS = table_of(DefinitionVersion)
_HEADS = table_of(WorkflowDefinitionRow)
_EXISTING_RUN = select(
    _RUNS.c.launch_fingerprint, _RUNS.c.temporal_run_id, _RUNS.c.workflow_id, _RUNS.c.workflow_version, _RUNS.c.launch_payload, _RUNS.c.created_at,
).where(_RUNS.c.run_id == bindparam("p_run"))
_HEAD_VERSION = select(_HEADS.c.latest_version).where(_HEADS.c.tenant == bindparam("p_tenant"), _HEADS.c.workflow_id == bindparam("p_workflow"))
_VERSION = select(_VERSIONS.c.document, _VERSIONS.c.definition_hash).where(
    _VERSIONS.c.tenant == bindparam("p_tenant"), _VERSIONS.c.workflow_id == bindparam("p_workflow"), _VERSIONS.c.version == bindparam("p_version"),
)
_INSERT_RUN = insert(_RUNS)
_RECORD_START = update(_RUNS).where(_RUNS.c.run_id == bindparam("p_run"), _RUNS.c.temporal_run_id.is_(None)).values(temporal_run_id=bindparam("p_temporal_run"))
_REMOVE_UNSTARTED = delete(_RUNS).where(_RUNS.c.run_id == bindparam("p_run"), _RUNS.c.temporal_run_id.is_(None))


def launch_fingerprint(workflow_id: str, version: int | None, payload: Any) -> str:
    """What a launch asked for (workflow, version as asked, payload), to tell a retry from a different launch."""
    return hashlib.sha256(canonical_json([workflow_id, version, payload]).encode("utf-8", "surrogatepass")).hexdigest()


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


class LaunchConflict(LaunchError):
    """The idempotency key was already used for a different launch."""


@dataclass(frozen=True)
class LaunchedRun:
    """A started run (``created`` is false when an idempotency key found an earlier launch)."""

    run_id: str
    tenant: str
    workflow_id: str
    workflow_version: int
    temporal_workflow_id: str
    temporal_run_id: str | None
    created: bool = True


@functools.cache
def _default_registry() -> ActionRegistry:
    return ActionRegistry.default()


class Launcher:
    """Creates the run row (pinned hash and semantics version), then starts the workflow."""

    def __init__(self, client: Client, database: Database, options: RunOptions | None = None, *, registry: ActionRegistry | None = None) -> None:
        """Bind to a Temporal client and the database.

        Args:
            client: Connected Temporal client (namespace of the authored worker).
            database: Authoring and read-model database.
            options: Interpreter options carried by every run this launcher starts. By default,
                the ``short`` actions of ``registry`` run as local activities.
            registry: The actions whose ``short`` flags the default options pin (default: the
                built-ins and the installed entry points). Ignored when ``options`` is given.
        """
        self.client = client
        self.database = database
        self.options = options or RunOptions(local_actions=(registry or _default_registry()).short_actions())

    async def _pin_children(self, tenant: str, document: dict[str, Any]) -> dict[str, ChildDefinition]:
        """Every definition reachable through control.callWorkflow, pinned now (transitively)."""
        pinned: dict[str, ChildDefinition] = {}
        queue = _called(document)
        while queue:
            wf_id, version = queue.pop()
            key = f"{wf_id}@{version}"
            if key in pinned:
                continue
            row = await _load_version(self.database, tenant, wf_id, version)
            pinned[key] = ChildDefinition(definition=row.document, definition_hash=row.definition_hash)
            queue.extend(_called(row.document))
        return pinned

    def _check_input_size(
        self, workflow_id: str, version: int, document: dict[str, Any], children: dict[str, ChildDefinition], payload: Any, mocks: dict[str, MockSpec] | None,
    ) -> None:
        """Refuse a run whose start input, or a child run's, Temporal would refuse (its blob size limit).

        Every start input carries its own definition and every pinned child definition (a child
        run receives them all again), the payload and the mocks. They are measured in the
        client's own encoding (its JSON escapes non-ASCII text), for the largest of the run's
        own definition and its children's; a child's payload is made at run time and is not
        known here.

        Raises:
            LaunchError: The input is over :data:`MAX_RUN_INPUT_BYTES`.
        """
        converter = self.client.data_converter.payload_converter
        own, payload_size, mocks_size, *pinned = (p.ByteSize() for p in converter.to_payloads([document, payload, dict(mocks or {}), *(c.definition for c in children.values())]))
        size = max([own, *pinned]) + sum(pinned) + payload_size + mocks_size
        if size > MAX_RUN_INPUT_BYTES:
            raise LaunchError(
                f"the run's input would be {describe_size(size)} (the definition of {workflow_id!r} version {version} or its largest called one, "
                f"{len(children)} called definitions pinned with it, and the payload), over the limit of {describe_size(MAX_RUN_INPUT_BYTES)} that Temporal "
                "accepts; make the payload or the definitions smaller, or call fewer workflows from one run"
            )

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
        replay_of_run_id: str | None = None,
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
            replay_of_run_id: The run this one replays (recorded on the new run).

        Raises:
            LaunchConflict: The idempotency key was used for a launch of another workflow,
                version or payload.
            LaunchError: Not published, an argument or the payload is invalid, or the run's input
                would be over Temporal's size limit. Nothing was created.
        """
        _check_arguments(tenant, workflow_id, payload, version)
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key or len(idempotency_key) > 300):
            raise LaunchError("the idempotency key must be a non-empty string of at most 300 characters")
        requested_version = version
        fingerprint = launch_fingerprint(workflow_id, version, payload) if idempotency_key is not None else None
        run_id = run_id_for_key(tenant, idempotency_key) if idempotency_key is not None else uuid.uuid4().hex
        temporal_id = workflow_id_for_run(run_id)
        existing: Any = None
        if idempotency_key is not None:
            existing = await self.database.first(_EXISTING_RUN, {"p_run": run_id})
            if existing is not None:
                if existing.launch_fingerprint not in (None, fingerprint):
                    raise LaunchConflict(f"the idempotency key was already used for a different launch (run {run_id}); use another key for another launch")
                if existing.temporal_run_id is not None:
                    return LaunchedRun(run_id, tenant, existing.workflow_id, existing.workflow_version, temporal_id, existing.temporal_run_id, created=False)
                # a previous launch with this key wrote its row and did not record a start: finish it
                version = existing.workflow_version
                if existing.launch_payload is not None:
                    payload = existing.launch_payload
        if version is None:
            head = await self.database.first(_HEAD_VERSION, {"p_tenant": tenant, "p_workflow": workflow_id})
            if head is None:
                raise LaunchError(f"workflow {workflow_id!r} is not published for tenant {tenant!r}")
            version = head.latest_version
        row = await _load_version(self.database, tenant, workflow_id, version)
        schema = row.document.get("payloadSchema")
        if schema is not None:
            try:
                problems = schema_problems(schema, payload, "payload")
            except Exception as err:  # a schema the validator cannot apply must not escape as its own exception
                raise LaunchError(
                    f"the payloadSchema of workflow {workflow_id!r} version {version} could not be applied ({type(err).__name__}: {safe_text(str(err), 300)}); "
                    "fix the schema and publish a new version"
                ) from None
            if problems:
                raise LaunchError("the payload does not match payloadSchema: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems), problems)

        children = await self._pin_children(tenant, row.document)
        self._check_input_size(workflow_id, version, row.document, children, payload, mocks)
        now = utcnow()
        if existing is None:
            try:
                await self.database.write([(_INSERT_RUN, {
                    "run_id": run_id, "tenant": tenant, "workflow_id": workflow_id, "workflow_version": version, "status": "RUNNING", "engine": "temporal",
                    "temporal_workflow_id": temporal_id, "definition_hash": row.definition_hash, "semantics_version": SEMANTICS_VERSION,
                    "root_run_id": run_id, "input": redact(payload), "trigger": trigger, "created_at": now, "started_at": now, "updated_at": now,
                    "launch_payload": payload, "launch_key": idempotency_key, "launch_fingerprint": fingerprint, "replay_of_run_id": replay_of_run_id,
                })])
            except IntegrityError:
                if idempotency_key is None:
                    raise
                # a concurrent launch with the same key inserted the row first: it is that launch
                return await self.launch(tenant, workflow_id, payload, version=requested_version, mocks=mocks, trigger=trigger,
                                         idempotency_key=idempotency_key, replay_of_run_id=replay_of_run_id)
        else:
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
            await self.database.write([(_REMOVE_UNSTARTED, {"p_run": run_id})])
            raise
        recorded = await self.database.write([(_RECORD_START, {"p_run": run_id, "p_temporal_run": temporal_run_id})])
        if recorded[0]:
            # the launch that records the start counts it: a retried launch of the same key does not
            metrics.observe_run_started(workflow_id)
        log.debug("started run %s of %s v%s", run_id, workflow_id, version, extra={"tenant": tenant, "runId": run_id, "workflowId": workflow_id})
        return LaunchedRun(run_id, tenant, workflow_id, version, temporal_id, temporal_run_id)


async def _load_version(database: Database, tenant: str, workflow_id: str, version: int) -> Any:
    """A published version's row (``document``, ``definition_hash``) whose stored document still matches its pinned hash.

    Raises:
        LaunchError: Not published for this tenant, or altered outside publishing.
    """
    row = await database.first(_VERSION, {"p_tenant": tenant, "p_workflow": workflow_id, "p_version": version})
    if row is None:
        raise LaunchError(f"workflow {workflow_id!r} version {version} is not published for tenant {tenant!r}")
    if definition_hash(row.document) != row.definition_hash:
        raise LaunchError(f"workflow {workflow_id!r} version {version} no longer matches its pinned hash; the stored definition was altered outside publishing")
    return row


def _check_arguments(tenant: Any, workflow_id: Any, payload: Any, version: Any) -> None:
    """Refuse arguments the runtime cannot store or look up, naming the field and the fix.

    Raises:
        LaunchError: An argument is not acceptable.
    """
    for name, value, longest in (("tenant", tenant, 128), ("workflow id", workflow_id, MAX_ID_LENGTH)):
        if not isinstance(value, str) or not value:
            raise LaunchError(f"the {name} must be a non-empty string, not {type(value).__name__}")
        if len(value) > longest:
            raise LaunchError(f"the {name} is {len(value)} characters long; use at most {longest}")
        try:
            check_value(value, name)
        except ValueProblem as problem:
            raise LaunchError(safe_text(str(problem))) from None
    if version is not None and (type(version) is not int or not 1 <= version <= MAX_VERSION):
        shown = f"a {type(version).__name__}"
        if type(version) is int:
            shown = str(version) if version.bit_length() <= 64 else "an integer beyond 64 bits"
        raise LaunchError(f"the version must be an integer from 1 to {MAX_VERSION}, or omitted for the latest; got {shown}")
    if not isinstance(payload, dict):
        raise LaunchError(f"the payload must be a JSON object, not {type(payload).__name__}")
    try:
        check_value(payload, "payload")
    except ValueProblem as problem:
        raise LaunchError(safe_text(str(problem)), [{"path": safe_text(problem.where, 500), "message": safe_text(problem.reason)}]) from None


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
