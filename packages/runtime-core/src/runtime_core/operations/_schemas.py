"""Request and response shapes of the operations (the HTTP API's OpenAPI document is generated from them).

They are separate from the database rows and from each other: what a client sends, and what it
is shown (redacted). Names are camelCase, as in the DSL.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ROLES",
    "ActionRecord",
    "BulkCancelRequest",
    "BulkCancelResult",
    "CancelRequest",
    "CompleteTaskRequest",
    "DefinitionSummary",
    "DefinitionsRequest",
    "Delivery",
    "Diagnosis",
    "EventAccepted",
    "EventView",
    "InvocationView",
    "LaunchRequest",
    "LiveView",
    "OverrideTaskRequest",
    "Page",
    "Problem",
    "PublishResult",
    "PublishedVersionView",
    "ReconcileResult",
    "RedactionRuleRequest",
    "RedactionRuleView",
    "ReplayRequest",
    "ResumeRequest",
    "RetentionRequest",
    "RetentionSettings",
    "Role",
    "RunDetail",
    "RunFilter",
    "RunSummary",
    "SendEventRequest",
    "StepView",
    "TaskDefinitionRequest",
    "TaskDetail",
    "TaskView",
    "TokenCreated",
    "TokenView",
    "ValidationResult",
    "VersionDetail",
    "VersionSummary",
    "WaitView",
]

Role = Literal["viewer", "operator", "author", "admin"]
#: Roles in order: each includes the ones before it.
ROLES: tuple[str, ...] = ("viewer", "operator", "author", "admin")

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    # strict: what a client sends is what it meant ("1" is not 1); unknown keys are refused
    model_config = ConfigDict(extra="forbid", strict=True)


class Page(_Out, Generic[T]):
    """A page of a list, newest first; ``nextCursor`` continues it (``null`` at the end)."""

    items: list[T]
    nextCursor: str | None = None


# ------------------------------------------------------------------------------------ runs


class Diagnosis(_Out):
    """Why a run makes no progress (``null`` on a healthy run)."""

    stuck: bool = True
    since: str = Field(description="When the run last made progress.")
    reason: Literal["NO_WORKER", "WORKFLOW_TASK_FAILING", "ACTIVITY_RETRYING", "BACKLOG", "EXECUTION_GONE"]
    detail: str = Field(description="What Temporal says, in words an operator understands, and what to do.")


class ActionRecord(_Out):
    """An operator action on the run."""

    action: str = Field(description="cancel, replay, replayed-as, resume, reconcile.")
    actor: str | None
    reason: str | None
    at: str
    detail: dict[str, Any] | None = None


class RunSummary(_Out):
    """A run in a list."""

    runId: str
    workflowId: str
    workflowVersion: int
    status: str
    startedAt: str | None
    endedAt: str | None
    durationMs: int | None
    parentRunId: str | None
    rootRunId: str | None
    replayOfRunId: str | None
    diagnosis: Diagnosis | None = None


class RunDetail(RunSummary):
    """One run, with its scopes (redacted), error, diagnosis and operator history."""

    definitionHash: str
    triggeredBy: dict[str, Any] | None
    payload: Any
    vars: Any
    meta: Any
    error: dict[str, Any] | None
    output: Any = Field(description="`{payload, vars}` of a run that SUCCEEDED; null otherwise.")
    history: list[ActionRecord]


class StepView(_Out):
    """One step execution."""

    seq: int
    stepId: str
    stepPath: str
    type: str
    name: str | None
    status: str
    attempts: int
    itemIndex: int | None
    loopIndices: list[int] | None
    startedAt: str | None
    endedAt: str | None
    durationMs: int | None
    input: Any = Field(default=None, description="An action's input (redacted); null for other steps.")
    output: Any = Field(default=None, description="An action's output (redacted); null for other steps.")
    error: dict[str, Any] | None


class WaitView(_Out):
    """A wait of a run."""

    seq: int
    type: str
    status: str
    stepId: str | None
    eventName: str | None
    correlationKey: str | None
    dueAt: str | None
    createdAt: str
    resolvedAt: str | None


class TaskView(_Out):
    """A human task (in lists)."""

    taskId: str
    runId: str
    taskType: str
    title: str
    status: str
    createdAt: str
    completedAt: str | None


class TaskDetail(TaskView):
    """A human task with its form and context."""

    description: str | None
    contextData: Any
    formSchema: dict[str, Any] | None
    response: Any
    completedBy: str | None
    adminOverride: bool


class InvocationView(_Out):
    """An action invocation recorded in the idempotency ledger."""

    stepSeq: int
    stepPath: str
    actionId: str
    actionVersion: int
    attempt: int
    idempotencyKey: str
    mocked: bool
    input: Any
    output: Any
    createdAt: str


class Delivery(_Out):
    """One delivery of an event."""

    kind: str = Field(description="`signal` (to a waiting run) or `trigger` (a started run).")
    runId: str | None
    target: str
    status: str = Field(description="PENDING (retried), DELIVERED, SKIPPED (the run had ended), FAILED (can never succeed).")
    attempts: int
    reason: str | None


class EventView(_Out):
    """An inbound event with its deliveries."""

    eventId: str
    eventName: str
    correlationKey: str | None
    payload: Any
    source: str | None
    receivedAt: str
    dispatched: bool
    deliveries: list[Delivery]


class LiveView(_Out):
    """The interpreter's own view, from Temporal queries."""

    currentStep: dict[str, Any] | None
    currentWait: dict[str, Any] | None
    summary: dict[str, Any]


class ReconcileResult(_Out):
    """Runs whose row was open while Temporal's execution had ended or was gone."""

    checked: int
    reconciled: list[dict[str, Any]]
    notOpen: list[str] = Field(default_factory=list, description="Given run ids that are unknown, another tenant's, or already ended.")


class BulkCancelResult(_Out):
    """What a bulk cancel matched and did."""

    matched: int
    canceled: list[str]
    skipped: list[dict[str, str]]
    dryRun: bool = False


# -------------------------------------------------------------------------------- requests


class RunFilter(_In):
    """Which runs (every field optional, all must hold)."""

    status: list[str] | None = None
    workflowId: str | None = Field(default=None, max_length=200)
    startedAfter: str | None = Field(default=None, description="RFC 3339 instant.")
    startedBefore: str | None = Field(default=None, description="RFC 3339 instant.")
    rootOnly: bool = False
    stuck: bool = False


class LaunchRequest(_In):
    """Start a run of a published workflow (the latest version without ``version``)."""

    workflowId: str = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    payload: dict[str, Any] = Field(default_factory=dict)


class CancelRequest(_In):
    """Why the run is cancelled (recorded with the actor)."""

    reason: str | None = Field(default=None, max_length=2000)


class BulkCancelRequest(_In):
    """Cancel runs by id or by filter; ``dryRun`` reports what would be cancelled."""

    runIds: list[str] | None = Field(default=None, max_length=1000)
    filter: RunFilter | None = None
    dryRun: bool = False
    reason: str | None = Field(default=None, max_length=2000)


class ReplayRequest(_In):
    """Replay with the original input (no ``payload``) or an edited one; ``dryRun`` only checks the payload."""

    payload: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=2000)
    dryRun: bool = Field(default=False, description="Check the payload against the version's `payloadSchema` and launch nothing.")


class FieldError(_Out):
    """One way a value fails its schema."""

    path: str = Field(description="Where, from the root (`payload.amount`).")
    code: str
    message: str


class ReplayCheck(_Out):
    """What a replay with this payload would meet (a dry run: nothing was launched)."""

    valid: bool
    errors: list[FieldError]


class ResumeRequest(_In):
    """Why the run is resumed (recorded with the actor)."""

    reason: str | None = Field(default=None, max_length=2000)


class SendEventRequest(_In):
    """An inbound event."""

    eventName: str = Field(min_length=1, max_length=200)
    correlationKey: str | None = Field(default=None, max_length=500)
    eventId: str | None = Field(default=None, min_length=1, max_length=200)
    payload: Any = None


class EventAccepted(_Out):
    """A stored event: durable once answered (delivery follows, retried until done)."""

    eventId: str
    accepted: bool = True
    duplicate: bool


class CompleteTaskRequest(_In):
    """A task's response, validated against its form schema."""

    response: Any


class OverrideTaskRequest(_In):
    """An admin's response that skips validation; the reason is recorded."""

    response: Any
    reason: str = Field(min_length=1, max_length=2000)


class DefinitionsRequest(_In):
    """A batch of definitions (validated or published together)."""

    definitions: list[Any] = Field(max_length=200)


class Problem(_Out):
    """A problem of a definition."""

    workflowId: Any = None
    version: Any = None
    path: str | None
    stepId: str | None = None
    code: str
    message: str
    severity: str


class ValidationResult(_Out):
    """What validation found (nothing is stored)."""

    valid: bool
    problems: list[Problem]


class PublishedVersionView(_Out):
    """A version of a successful publish."""

    workflowId: str
    version: int
    hash: str
    created: bool


class PublishResult(_Out):
    """A published batch (warnings included)."""

    published: list[PublishedVersionView]
    problems: list[Problem]


class DefinitionSummary(_Out):
    """A workflow and its latest version."""

    workflowId: str
    name: str
    description: str | None
    latestVersion: int
    updatedAt: str


class VersionSummary(_Out):
    """A published version."""

    workflowId: str
    version: int
    hash: str
    trigger: dict[str, Any] | None
    publishedAt: str


class VersionDetail(VersionSummary):
    """A published version with its definition."""

    definition: dict[str, Any]


class TaskDefinitionRequest(_In):
    """A task type and its form schema."""

    taskType: str = Field(min_length=1, max_length=200)
    formSchema: dict[str, Any]


class TokenView(_Out):
    """An API token (never its value)."""

    id: int
    tenant: str
    name: str
    role: str
    prefix: str
    createdAt: str
    lastUsedAt: str | None
    revokedAt: str | None


class TokenCreated(TokenView):
    """A new token: ``token`` is shown this once and stored only as a hash."""

    token: str


class RedactionRuleRequest(_In):
    """A redaction rule: a ``path`` (``payload.card.*``) or a ``key`` pattern (``*password*``)."""

    kind: Literal["path", "key"]
    pattern: str = Field(min_length=1, max_length=300)


class RedactionRuleView(_Out):
    """A tenant's redaction rule."""

    id: int
    kind: str
    pattern: str
    createdAt: str
    createdBy: str | None


# ------------------------------------------------------------------------------- retention

#: Bounds of a retention in days (one day to a hundred years).
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 36500
#: Ledger rows are kept this many days unless the tenant says otherwise.
DEFAULT_LEDGER_RETENTION_DAYS = 365


class RetentionRequest(_In):
    """A tenant's retention: ``runRetentionDays`` null keeps ended runs forever."""

    runRetentionDays: int | None = Field(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS,
                                         description="Ended runs (SUCCEEDED, FAILED, CANCELED) older than this many days are deleted with their projections; null keeps them forever.")
    ledgerRetentionDays: int | None = Field(default=None, ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS,
                                            description=f"Idempotency-ledger rows older than this many days whose run is gone are deleted; null: {DEFAULT_LEDGER_RETENTION_DAYS}.")


class RetentionSettings(_Out):
    """A tenant's retention as the housekeeping workflow applies it."""

    tenant: str
    runRetentionDays: int | None = Field(description="null: ended runs are kept forever.")
    ledgerRetentionDays: int
    updatedAt: str | None
    updatedBy: str | None
