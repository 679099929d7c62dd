"""SQLAlchemy models: authoring truth (definitions) and the read model (projections).

Every row carries its tenant. Temporal, not this database, is the execution authority: the run,
step, wait and task tables are projections written by activities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ActionInvocation",
    "ApiToken",
    "Base",
    "DataStoreEntry",
    "DefinitionVersion",
    "EventDelivery",
    "RedactionRule",
    "RunAction",
    "RunRow",
    "RunSnapshot",
    "RuntimeEvent",
    "StepRow",
    "TaskDefinition",
    "TaskRow",
    "TenantSettings",
    "WaitRow",
    "WorkflowDefinitionRow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON everywhere, JSONB on PostgreSQL.
JsonType = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)
#: Autoincrement primary keys: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonType, Any: JsonType, datetime: Timestamp}


class WorkflowDefinitionRow(Base):
    """A workflow id within a tenant; its versions live in ``workflow_definition_versions``."""

    __tablename__ = "workflow_definitions"
    __table_args__ = (UniqueConstraint("tenant", "workflow_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    workflow_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DefinitionVersion(Base):
    """An immutable published version: ``(tenant, workflow_id, version)`` is written once."""

    __tablename__ = "workflow_definition_versions"
    __table_args__ = (
        UniqueConstraint("tenant", "workflow_id", "version"),
        Index("ix_workflow_definition_versions_trigger", "tenant", "trigger_event_name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    workflow_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    definition_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]
    semantics_version: Mapped[int] = mapped_column(Integer)
    trigger_type: Mapped[str | None] = mapped_column(String(32))
    trigger_event_name: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime]


class RunRow(Base):
    """Projection of one authored run (root or child)."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        Index("ix_workflow_runs_tenant_status", "tenant", "status"),
        Index("ix_workflow_runs_parent", "parent_run_id"),
        Index("ix_workflow_runs_root", "root_run_id"),
        Index("ix_workflow_runs_tenant_created", "tenant", "created_at", "run_id"),
    )

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    workflow_id: Mapped[str] = mapped_column(String(200))
    workflow_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    engine: Mapped[str] = mapped_column(String(16), default="temporal")
    temporal_workflow_id: Mapped[str] = mapped_column(String(300))
    temporal_run_id: Mapped[str | None] = mapped_column(String(64))
    definition_hash: Mapped[str] = mapped_column(String(64))
    semantics_version: Mapped[int] = mapped_column(Integer)
    parent_run_id: Mapped[str | None] = mapped_column(String(64))
    root_run_id: Mapped[str | None] = mapped_column(String(64))
    input: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    #: The payload exactly as launched (``input`` is the display copy, redacted): what a replay
    #: sends again. Never shown.
    launch_payload: Mapped[Any | None] = mapped_column(JsonType)
    #: The launch's idempotency key and a fingerprint of what it launched (workflow, version,
    #: payload): the same key with another body is a conflict.
    launch_key: Mapped[str | None] = mapped_column(String(300))
    launch_fingerprint: Mapped[str | None] = mapped_column(String(64))
    #: The run this one replays.
    replay_of_run_id: Mapped[str | None] = mapped_column(String(64))


class StepRow(Base):
    """One execution of one step (a forEach body step gets one per item)."""

    __tablename__ = "workflow_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "seq"), Index("ix_workflow_run_steps_tenant_run", "tenant", "run_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(200))
    step_path: Mapped[str] = mapped_column(String(2000))
    step_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    item_index: Mapped[int | None] = mapped_column(Integer)
    loop_indices: Mapped[list[int] | None] = mapped_column(JsonType)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class WaitRow(Base):
    """An open or finished wait (time, event or human)."""

    __tablename__ = "workflow_run_waits"
    __table_args__ = (
        UniqueConstraint("run_id", "seq"),
        Index("ix_workflow_run_waits_match", "tenant", "wait_type", "event_name", "correlation_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    step_seq: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[str | None] = mapped_column(String(200))
    wait_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    event_name: Mapped[str | None] = mapped_column(String(200))
    correlation_key: Mapped[str | None] = mapped_column(String(500))
    filters: Mapped[list[Any] | None] = mapped_column(JsonType)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class ActionInvocation(Base):
    """The idempotency ledger: one successful invocation per ``(tenant, idempotency_key)``."""

    __tablename__ = "workflow_action_invocations"
    __table_args__ = (UniqueConstraint("tenant", "idempotency_key"), Index("ix_workflow_action_invocations_run", "run_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(500))
    run_id: Mapped[str] = mapped_column(String(64))
    step_seq: Mapped[int] = mapped_column(Integer)
    step_path: Mapped[str] = mapped_column(String(2000))
    action_id: Mapped[str] = mapped_column(String(200))
    action_version: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    mocked: Mapped[bool] = mapped_column(Boolean, default=False)
    input: Mapped[Any | None] = mapped_column(JsonType)
    output: Mapped[Any | None] = mapped_column(JsonType)
    created_at: Mapped[datetime]


class RuntimeEvent(Base):
    """An inbound event, stored once per ``(tenant, event_id)``, with its delivery intent.

    ``dispatch_status`` is ``PENDING`` from the moment the event is stored (the same row, so the
    same transaction) until a dispatcher has turned it into ``workflow_event_deliveries`` rows
    (``DISPATCHED``, in the transaction that writes them).
    """

    __tablename__ = "workflow_runtime_events"
    __table_args__ = (
        UniqueConstraint("tenant", "event_id"),
        Index("ix_workflow_runtime_events_match", "tenant", "event_name", "correlation_key", "received_at"),
        Index("ix_workflow_runtime_events_dispatch", "dispatch_status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(200))
    event_name: Mapped[str] = mapped_column(String(200))
    correlation_key: Mapped[str | None] = mapped_column(String(500))
    payload: Mapped[Any | None] = mapped_column(JsonType)
    source: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]
    dispatch_status: Mapped[str] = mapped_column(String(16), server_default="DISPATCHED")
    dispatched_at: Mapped[datetime | None]


class EventDelivery(Base):
    """One delivery of an event: a signal to a waiting run, or the start of a triggered run.

    Unique per ``(tenant, event_id, kind, target)``: a run is signalled, and a trigger starts its
    run, once per event whatever the number of dispatchers. ``status`` is ``PENDING`` (retried
    from ``next_attempt_at`` with backoff), ``DELIVERED``, ``SKIPPED`` (the run had already
    ended) or ``FAILED`` (can never succeed, such as a triggered payload the workflow refuses).
    """

    __tablename__ = "workflow_event_deliveries"
    __table_args__ = (
        UniqueConstraint("tenant", "event_id", "kind", "target"),
        Index("ix_workflow_event_deliveries_due", "status", "next_attempt_at"),
        Index("ix_workflow_event_deliveries_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(200))
    #: ``signal`` (target: the run id) or ``trigger`` (target: ``<workflow id>@<version>``).
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(300))
    #: The signalled run, or the run a trigger started (its id is derived from the event).
    run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class TaskRow(Base):
    """A human task opened by a ``human.task`` step."""

    __tablename__ = "workflow_tasks"
    __table_args__ = (Index("ix_workflow_tasks_tenant_status", "tenant", "status"), Index("ix_workflow_tasks_run", "run_id"))

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64))
    wait_seq: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[str | None] = mapped_column(String(200))
    task_type: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    context_data: Mapped[Any | None] = mapped_column(JsonType)
    form_schema: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(16))
    response: Mapped[Any | None] = mapped_column(JsonType)
    completed_by: Mapped[str | None] = mapped_column(String(200))
    admin_override: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class TaskDefinition(Base):
    """A tenant's registered form schema for a task type."""

    __tablename__ = "workflow_task_definitions"
    __table_args__ = (UniqueConstraint("tenant", "task_type"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    task_type: Mapped[str] = mapped_column(String(200))
    form_schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DataStoreEntry(Base):
    """Tenant-scoped key/value store of the ``data.*`` actions; expired keys are swept."""

    __tablename__ = "workflow_data_store"
    __table_args__ = (UniqueConstraint("tenant", "key"), Index("ix_workflow_data_store_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(500))
    value: Mapped[Any | None] = mapped_column(JsonType)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class RunAction(Base):
    """An operator action on a run (cancel, replay, resume, reconcile), with who, why and when."""

    __tablename__ = "workflow_run_actions"
    __table_args__ = (Index("ix_workflow_run_actions_run", "tenant", "run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    at: Mapped[datetime]


class ApiToken(Base):
    """An API token: one tenant, one role, stored only as a SHA-256 hash."""

    __tablename__ = "workflow_api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"), UniqueConstraint("tenant", "name"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    #: The first characters of the token, to tell tokens apart in listings.
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RedactionRule(Base):
    """A tenant's rule for what the API and CLI show as ``"[REDACTED]"``."""

    __tablename__ = "workflow_redaction_rules"
    __table_args__ = (UniqueConstraint("tenant", "kind", "pattern"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    #: ``path`` (a dotted path with ``*`` wildcards, such as ``payload.card.*``) or ``key``
    #: (a key name pattern with ``*``, such as ``*password*``, matched anywhere).
    kind: Mapped[str] = mapped_column(String(8))
    pattern: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(200))


class RunSnapshot(Base):
    """Read-only history of a run's scopes (for example at each continue-as-new)."""

    __tablename__ = "workflow_run_snapshots"
    __table_args__ = (Index("ix_workflow_run_snapshots_run", "tenant", "run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    snapshot: Mapped[dict[str, Any]]
    taken_at: Mapped[datetime]


class TenantSettings(Base):
    """A tenant's retention: how long ended runs and the idempotency ledger are kept.

    No row, or ``run_retention_days`` null, keeps runs forever (the default). The housekeeping
    workflow deletes ended runs (and their projections) older than ``run_retention_days``, and
    ledger rows older than ``ledger_retention_days`` whose run is gone.
    """

    __tablename__ = "workflow_tenant_settings"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_retention_days: Mapped[int | None] = mapped_column(Integer)
    ledger_retention_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(200))
