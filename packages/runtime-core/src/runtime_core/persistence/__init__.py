"""Persistence: SQLAlchemy models, engines and packaged alembic migrations."""

from runtime_core.persistence._database import Database, normalize_url, utcnow
from runtime_core.persistence._migrate import current_revision, head_revision, upgrade
from runtime_core.persistence._tables import (
    ActionInvocation,
    ApiToken,
    Base,
    DataStoreEntry,
    DefinitionVersion,
    EventDelivery,
    RedactionRule,
    RunAction,
    RunRow,
    RunSnapshot,
    RuntimeEvent,
    StepRow,
    TaskDefinition,
    TaskRow,
    TenantSettings,
    WaitRow,
    WorkflowDefinitionRow,
)

__all__ = [
    "ActionInvocation",
    "ApiToken",
    "Base",
    "DataStoreEntry",
    "Database",
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
    "current_revision",
    "head_revision",
    "normalize_url",
    "upgrade",
    "utcnow",
]
