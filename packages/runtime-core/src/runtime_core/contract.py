"""The Temporal contract of the runtime and the data shapes that cross it.

Everything here is deterministic-safe: plain constants and dataclasses that the interpreter
workflow, the activities, the launcher and the workers all share. Producer and worker use these
constants verbatim; nothing else in the code base spells a queue or workflow type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTION_ACTIVITY",
    "CHILD_STATUS_SIGNAL",
    "DOMAIN_TASK_QUEUE",
    "EVENT_SIGNAL",
    "FINALIZE_ACTIVITY",
    "HOUSEKEEPING_SCHEDULE_ID",
    "HOUSEKEEPING_WORKFLOW",
    "HUMAN_TASK_SIGNAL",
    "OPEN_WAIT_ACTIVITY",
    "PROJECT_ACTIVITY",
    "QUERY_CURRENT_STEP",
    "QUERY_CURRENT_WAIT",
    "QUERY_INTERPRETER_SUMMARY",
    "RECONCILE_RUNS_ACTIVITY",
    "RECONCILE_SCHEDULES_ACTIVITY",
    "RECORD_DIAGNOSES_ACTIVITY",
    "RETENTION_ACTIVITY",
    "SCHEDULED_AWAIT_ACTIVITY",
    "SCHEDULED_LAUNCH_ACTIVITY",
    "SCHEDULED_LAUNCH_WORKFLOW",
    "SCHEDULE_ID_PREFIX",
    "SEMANTICS_VERSION",
    "SWEEP_ACTIVITY",
    "TASK_QUEUE",
    "WORKFLOW_TYPE",
    "ActionRequest",
    "ActionResult",
    "ChildDefinition",
    "FinalizeRequest",
    "MockSpec",
    "OpenWaitRequest",
    "OpenWaitResult",
    "ProjectRequest",
    "RunInput",
    "RunOptions",
    "RunResult",
    "ScheduledLaunchInput",
    "ScheduledLaunchRequest",
    "workflow_id_for_run",
]

#: The one task queue every authored run executes on.
TASK_QUEUE = "workflow-runtime-v2"
#: The interpreter workflow type.
WORKFLOW_TYPE = "workflowRuntimeV2RunWorkflow"
#: Signals accepted by the interpreter workflow.
EVENT_SIGNAL = "workflowRuntimeV2Event"
HUMAN_TASK_SIGNAL = "workflowRuntimeV2HumanTask"
#: A child run telling its parent run that it is now WAITING or RUNNING again (``{"runId",
#: "waiting"}``); the parent counts a branch blocked on a WAITING child as blocked.
CHILD_STATUS_SIGNAL = "workflowRuntimeV2ChildStatus"
#: Queries answered by the interpreter workflow.
QUERY_CURRENT_STEP = "workflowRuntimeV2CurrentStep"
QUERY_CURRENT_WAIT = "workflowRuntimeV2CurrentWait"
QUERY_INTERPRETER_SUMMARY = "workflowRuntimeV2InterpreterSummary"

#: Activity names (referenced by name from workflow code, so the deterministic modules never
#: import the activity implementations or the database layer).
ACTION_ACTIVITY = "workflowRuntimeV2Action"
OPEN_WAIT_ACTIVITY = "workflowRuntimeV2OpenWait"
PROJECT_ACTIVITY = "workflowRuntimeV2Project"
FINALIZE_ACTIVITY = "workflowRuntimeV2Finalize"

#: The non-authored domain queue polled by the domain worker, and its housekeeping workflow.
DOMAIN_TASK_QUEUE = "workflow-runtime-domain"
HOUSEKEEPING_WORKFLOW = "workflowRuntimeHousekeeping"
SWEEP_ACTIVITY = "workflowRuntimeSweepDataStore"
RECONCILE_RUNS_ACTIVITY = "workflowRuntimeHousekeepingReconcileRuns"
RECONCILE_SCHEDULES_ACTIVITY = "workflowRuntimeHousekeepingReconcileSchedules"
RECORD_DIAGNOSES_ACTIVITY = "workflowRuntimeHousekeepingRecordDiagnoses"
RETENTION_ACTIVITY = "workflowRuntimeHousekeepingRetention"
#: The Temporal Schedule that starts the housekeeping workflow (one per namespace).
HOUSEKEEPING_SCHEDULE_ID = "wfr:housekeeping"
#: A fire of a trigger's Temporal Schedule: the workflow each fire starts on the domain queue, its
#: activity that launches the authored run, and the one that waits for that run to end (overlap).
SCHEDULED_LAUNCH_WORKFLOW = "workflowRuntimeScheduledLaunch"
SCHEDULED_LAUNCH_ACTIVITY = "workflowRuntimeScheduledLaunchRun"
SCHEDULED_AWAIT_ACTIVITY = "workflowRuntimeScheduledAwaitRun"
#: Every Temporal Schedule the runtime owns has an id ``wfr:{tenant}:{workflowId}:{key}``.
SCHEDULE_ID_PREFIX = "wfr:"

#: Version of the interpreter's observable semantics, pinned on every run. Bump it whenever a
#: change alters what an existing definition does.
SEMANTICS_VERSION = 1


def workflow_id_for_run(run_id: str) -> str:
    """Return the Temporal workflow id of an authored run.

    Args:
        run_id: The runtime's run id.

    Returns:
        ``workflow-runtime-v2:run:<run_id>``.
    """
    return f"{TASK_QUEUE}:run:{run_id}"


@dataclass
class MockSpec:
    """A scenario mock: every call of the action returns ``output`` or raises ``error``."""

    output: Any = None
    error: dict[str, Any] | None = None


@dataclass
class RunOptions:
    """Interpreter knobs chosen by the launcher (deterministic: carried in the run's input)."""

    #: Continue-as-new after this many steps even if Temporal does not suggest it yet.
    continue_as_new_after_steps: int = 2000
    #: Flush buffered projection rows once this many are pending.
    flush_every_rows: int = 200
    #: start-to-close timeout of one action attempt.
    action_timeout_ms: int = 300_000
    #: An action attempt heartbeats while it runs; one silent for this long is presumed lost with
    #: its worker and retried (an infrastructure retry, not an authored attempt).
    action_heartbeat_timeout_ms: int = 10_000
    #: ``id@version`` of the actions whose attempts run as local activities (the registry's
    #: ``short`` actions when the launcher started the run; pinned here so replay never depends
    #: on a worker's registry). Empty: every action is a regular activity.
    local_actions: list[str] = field(default_factory=list)


@dataclass
class ChildDefinition:
    """A published definition a run may call, pinned when the root run was launched."""

    definition: dict[str, Any]
    definition_hash: str


@dataclass
class RunInput:
    """Input of the interpreter workflow, built only by the launcher (or a parent run).

    The definition is already validated and pinned by hash: the workflow never reads the
    authoring tables.
    """

    run_id: str
    tenant: str
    workflow_id: str
    workflow_version: int
    definition: dict[str, Any]
    definition_hash: str
    semantics_version: int
    payload: dict[str, Any]
    started_at: str
    parent_run_id: str | None = None
    root_run_id: str | None = None
    mocks: dict[str, MockSpec] = field(default_factory=dict)
    #: Definitions reachable through control.callWorkflow, keyed ``"<id>@<version>"``.
    children: dict[str, ChildDefinition] = field(default_factory=dict)
    options: RunOptions = field(default_factory=RunOptions)
    #: Interpreter state carried across continue-as-new (None on a fresh run).
    checkpoint: dict[str, Any] | None = None
    #: Sequence number of the parent's callWorkflow step (child runs only).
    parent_step_seq: int | None = None


@dataclass
class RunResult:
    """What the interpreter workflow returns when a run succeeds."""

    run_id: str
    status: str
    payload: dict[str, Any]
    vars: dict[str, Any]
    meta: dict[str, Any]


@dataclass
class ActionRequest:
    """One attempt of an ``action.call`` step, executed by the action activity.

    ``projections`` carries the interpreter's buffered projection rows: the activity writes them
    in the same transaction as the step's STARTED row, so control steps cost no activity of
    their own.
    """

    run_id: str
    tenant: str
    seq: int
    step_id: str
    step_path: str
    item_index: int | None
    loop_indices: list[int]
    action_id: str
    action_version: int
    input: Any
    attempt: int
    idempotency_key: str
    started_at: str
    projections: list[dict[str, Any]] = field(default_factory=list)
    mock: MockSpec | None = None
    #: Where in ``input`` the definition itself placed ``{"$secret": NAME}`` references (lists of
    #: keys and indices). Only these are resolved: data that looks like a reference is data.
    #: ``None`` comes from interpreters before this field existed (every reference resolved).
    secret_paths: list[list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object the SDK would make of the request (``dataclasses.asdict``), without its deep copy."""
        out = dict(self.__dict__)
        if self.mock is not None:
            out["mock"] = {"output": self.mock.output, "error": self.mock.error}
        return out

    @classmethod
    def from_json(cls, value: Any) -> ActionRequest:
        """The request from its JSON object (unknown keys ignored, as the SDK's decoding does).

        The action activity decodes its input with this instead of the SDK's reflective
        conversion, which resolved the dataclass's type hints on every call (146 µs a request,
        measured; this takes under 2 µs).

        Raises:
            TypeError: ``value`` is not an object, or lacks a field without a default.
        """
        if isinstance(value, ActionRequest):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"an action request is a JSON object, not {type(value).__name__}")
        known = {k: v for k, v in value.items() if k in _REQUEST_FIELDS}
        mock = known.get("mock")
        if isinstance(mock, dict):
            known["mock"] = MockSpec(output=mock.get("output"), error=mock.get("error"))
        return cls(**known)


@dataclass
class ActionResult:
    """Output of the action activity."""

    output: Any
    replayed: bool = False

    @classmethod
    def from_json(cls, value: Any) -> ActionResult:
        """The result from its JSON object (see :meth:`ActionRequest.from_json`).

        Raises:
            TypeError: ``value`` is not an object with ``output``.
        """
        if isinstance(value, ActionResult):
            return value
        if not isinstance(value, dict) or "output" not in value:
            raise TypeError("an action result is a JSON object with 'output'")
        return cls(output=value["output"], replayed=bool(value.get("replayed", False)))


_REQUEST_FIELDS = frozenset(ActionRequest.__dataclass_fields__)


@dataclass
class FinalizeRequest:
    """Final projection flush of a run: buffered rows plus the run row's terminal state."""

    run_id: str
    tenant: str
    status: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    ended_at: str
    projections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ProjectRequest:
    """A flush of buffered projection rows with no action attached."""

    run_id: str
    tenant: str
    projections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OpenWaitRequest:
    """Open a wait: write its row (and a human task's row) and, for event waits, find events
    that arrived before the wait existed.

    The rows commit before the look-up, so an event ingested concurrently is either found here or
    sees the open wait and signals the run (duplicates are dropped by event id in the workflow).
    """

    run_id: str
    tenant: str
    wait_seq: int
    step_seq: int
    step_id: str
    wait_type: str
    created_at: str
    run_started_at: str
    run_waiting: bool
    event_name: str | None = None
    correlation_key: str | None = None
    filters: list[dict[str, Any]] | None = None
    due_at: str | None = None
    task: dict[str, Any] | None = None
    projections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OpenWaitResult:
    """Stored events that may match the new wait (oldest first), and a task's form schema."""

    events: list[dict[str, Any]] = field(default_factory=list)
    form_schema: dict[str, Any] | None = None


@dataclass
class ScheduledLaunchInput:
    """The static argument of a trigger's schedule action (the same for every fire)."""

    tenant: str
    workflow_id: str
    schedule_id: str
    #: ``schedule`` or ``recurring`` (recorded in the run's ``triggeredBy``).
    trigger_type: str
    #: Wait for the launched run to end before the fire workflow ends, so Temporal's overlap
    #: policy (``skip``, ``bufferOne``) applies to the authored run, not only to the fire.
    await_run: bool = True


@dataclass
class ScheduledLaunchRequest:
    """One fire's launch: the schedule's input and the fire's scheduled time (RFC 3339)."""

    tenant: str
    workflow_id: str
    schedule_id: str
    trigger_type: str
    scheduled_at: str
