"""The operations layer: every operator and author action, for the HTTP API, the CLI and the workers.

May touch: the launcher, ingress, publishing, the read model, persistence, a Temporal client.
Never imports a web framework or a CLI library (importlinter), nor the interpreter's engine.

``Operations(database, client)`` is the one object both faces call; each method takes the tenant
(and the acting principal where it is recorded) and raises an :class:`OperationError` subclass
that maps to one HTTP status.
"""

from runtime_core.operations._access import Access, Principal, hash_token, require_role
from runtime_core.operations._authoring import Authoring
from runtime_core.operations._errors import Conflict, Forbidden, Invalid, NotFound, OperationError, Unauthorized
from runtime_core.operations._health import HealthChecks
from runtime_core.operations._inbound import Inbound
from runtime_core.operations._launch import Launching
from runtime_core.operations._recovery import RunActions
from runtime_core.operations._redaction import ROOTS, Redactor
from runtime_core.operations._resume import Resuming
from runtime_core.operations._retention import HOUSEKEEPING_ACTOR, Retention
from runtime_core.operations._schedules import ScheduleFire, ScheduleNoteRequest, Schedules, ScheduleView
from runtime_core.operations._schemas import (
    DEFAULT_LEDGER_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    ROLES,
    ActionRecord,
    BulkCancelRequest,
    BulkCancelResult,
    CancelRequest,
    CompleteTaskRequest,
    DefinitionsRequest,
    DefinitionSummary,
    Delivery,
    Diagnosis,
    EventAccepted,
    EventView,
    FieldError,
    InvocationView,
    LaunchRequest,
    LiveView,
    OverrideTaskRequest,
    Page,
    Problem,
    PublishedVersionView,
    PublishResult,
    ReconcileResult,
    RedactionRuleRequest,
    RedactionRuleView,
    ReplayCheck,
    ReplayRequest,
    ResumeRequest,
    RetentionRequest,
    RetentionSettings,
    Role,
    RunDetail,
    RunFilter,
    RunSummary,
    SendEventRequest,
    StepView,
    TaskDefinitionRequest,
    TaskDetail,
    TaskView,
    TokenCreated,
    TokenView,
    ValidationResult,
    VersionDetail,
    VersionSummary,
    WaitView,
)

__all__ = [
    "DEFAULT_LEDGER_RETENTION_DAYS",
    "HOUSEKEEPING_ACTOR",
    "MAX_RETENTION_DAYS",
    "MIN_RETENTION_DAYS",
    "ROLES",
    "ROOTS",
    "ActionRecord",
    "BulkCancelRequest",
    "BulkCancelResult",
    "CancelRequest",
    "CompleteTaskRequest",
    "Conflict",
    "DefinitionSummary",
    "DefinitionsRequest",
    "Delivery",
    "Diagnosis",
    "EventAccepted",
    "EventView",
    "FieldError",
    "Forbidden",
    "HealthChecks",
    "Invalid",
    "InvocationView",
    "LaunchRequest",
    "LiveView",
    "NotFound",
    "OperationError",
    "Operations",
    "OverrideTaskRequest",
    "Page",
    "Principal",
    "Problem",
    "PublishResult",
    "PublishedVersionView",
    "ReconcileResult",
    "RedactionRuleRequest",
    "RedactionRuleView",
    "Redactor",
    "ReplayCheck",
    "ReplayRequest",
    "ResumeRequest",
    "RetentionRequest",
    "RetentionSettings",
    "Role",
    "RunDetail",
    "RunFilter",
    "RunSummary",
    "ScheduleFire",
    "ScheduleNoteRequest",
    "ScheduleView",
    "SendEventRequest",
    "StepView",
    "TaskDefinitionRequest",
    "TaskDetail",
    "TaskView",
    "TokenCreated",
    "TokenView",
    "Unauthorized",
    "ValidationResult",
    "VersionDetail",
    "VersionSummary",
    "WaitView",
    "hash_token",
    "require_role",
]


class Operations(Resuming, Retention, Launching, RunActions, Inbound, Authoring, Access, HealthChecks, Schedules):
    """Every operation, over one database and one Temporal client."""
