"""Pydantic models of the authored workflow DSL (see ``docs/dsl.md``).

One discriminated union on ``type`` is the single registry of step kinds; every model forbids
unknown keys. Field descriptions are the source of the generated DSL reference.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from runtime_core import values

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
STEP_ID_PATTERN = r"^[A-Za-z0-9_-]+$"

# ------------------------------------------------------------------------------------ limits
# What the runtime can honour (docs/dsl.md, "Limits"). Publishing refuses anything beyond them,
# so a published definition never fails on a number it was allowed to contain.

#: Longest duration (`durationMs`, `timeoutMs`, `backoffMs`, `maxDelayMs`, a computed retry
#: delay): 100 years of 365.25 days, far below Python's `timedelta` (about 2.7 million years).
MAX_DURATION_MS: Final = values.MAX_DURATION_MS  # 3,155,760,000,000
#: Largest version (workflow, called workflow, action): the version columns are 32-bit integers.
MAX_VERSION: Final = 2**31 - 1
#: Most attempts of one step: each attempt adds about ten history events (activity or child,
#: backoff timer, workflow task), so 100 attempts stay far below Temporal's 50,000-event limit.
MAX_ATTEMPTS: Final = 100
#: Largest `backoffMultiplier`: with at most MAX_ATTEMPTS attempts the computed delay stays a
#: finite number (and a delay over MAX_DURATION_MS is refused below).
MAX_BACKOFF_MULTIPLIER: Final = 10
#: Most iterations of one `control.forEach` running at once.
MAX_CONCURRENCY: Final = 100
#: Most iterations running at once through nested concurrent loops (the product of their
#: `concurrency`): Temporal refuses more than 2,000 activities or child runs in flight per run.
MAX_CONCURRENT_ITEMS: Final = 1000
#: Longest workflow id, step id, action id, event name and task type (their database columns).
MAX_ID_LENGTH: Final = 200
#: Longest definition `name` (its database column).
MAX_NAME_LENGTH: Final = 500
#: Longest step path (`root.steps[0].then.steps[2]…`, its database column).
MAX_STEP_PATH_LENGTH: Final = 2000

_DURATION = f"at most {MAX_DURATION_MS:,} (100 years)"


class _Strict(BaseModel):
    # strict: no coercion ("1" is not 1), so what publishes is exactly what the author wrote
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class Expression(_Strict):
    """A JSONata expression evaluated at run time: ``{"$expr": "<JSONata>"}``."""

    expr: str = Field(alias="$expr", description="JSONata source text.")


#: Any config value: an expression, a secret reference or a JSON literal.
Value = Any
ExpressionMap = dict[str, Expression]


class RetryPolicy(_Strict):
    """Step-level retry of ``action.call`` and ``control.callWorkflow``."""

    maxAttempts: int = Field(ge=1, le=MAX_ATTEMPTS, description="All attempts, the first included.")
    backoffMs: int = Field(ge=0, le=MAX_DURATION_MS, description="Delay before the second attempt, in ms.")
    backoffMultiplier: float = Field(default=2, ge=1, le=MAX_BACKOFF_MULTIPLIER, allow_inf_nan=False, description="Growth of the delay per attempt.")
    maxDelayMs: int | None = Field(
        default=None, ge=0, le=MAX_DURATION_MS,
        description=f"Cap on one delay; none by default. Without it the longest computed delay must be {_DURATION} ms.",
    )
    jitter: bool = Field(default=False, description="Scale each delay by a deterministic random in [0.5, 1].")
    retryOn: list[str] | None = Field(
        default=None,
        description="Error categories or codes to retry; default: every catchable error but "
        "ValidationError and ExpressionError.",
    )

    @model_validator(mode="after")
    def _delays_fit(self) -> RetryPolicy:
        """The longest delay the policy computes (before the last attempt) is one the runtime can wait."""
        if self.maxAttempts < 2 or self.maxDelayMs is not None:
            return self
        longest = self.backoffMs * float(self.backoffMultiplier) ** (self.maxAttempts - 2)
        if longest > MAX_DURATION_MS:
            raise PydanticCustomError(
                "retry_delay_too_long",
                f"the delay before attempt {self.maxAttempts} would be {longest:.3g} ms, over the limit of {MAX_DURATION_MS:,} ms (100 years); "
                "set maxDelayMs, or lower backoffMultiplier or maxAttempts",
            )
        return self


class OnErrorPolicy(_Strict):
    """What happens after the last attempt fails."""

    policy: Literal["fail", "continue"] = Field(
        default="fail", description="`fail` raises the error; `continue` stores it at `error` and goes on."
    )


class _StepBase(_Strict):
    id: str = Field(pattern=STEP_ID_PATTERN, max_length=MAX_ID_LENGTH, description="Unique step id within the definition.")
    name: str | None = Field(default=None, description="Optional display name shown in timelines and UIs.")


# ---------------------------------------------------------------------------------- node steps


class ActionCallConfig(_Strict):
    """Config of ``action.call``."""

    actionId: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Registered action id, e.g. `core.echo`.")
    version: int = Field(ge=1, le=MAX_VERSION, description="Registered action version.")
    inputMapping: dict[str, Value] | None = Field(default=None, description="Values forming the action input.")
    saveAs: str | None = Field(default=None, description="Assignment path for the action output.")
    idempotencyKey: Expression | None = Field(
        default=None, description="Explicit idempotency key; derived from run, step, loop indices and input when absent."
    )


class ActionCallStep(_StepBase):
    """Run a registered action in an activity."""

    type: Literal["action.call"]
    config: ActionCallConfig
    retry: RetryPolicy | None = None
    onError: OnErrorPolicy | None = None


class AssignConfig(_Strict):
    """Config of ``transform.assign``."""

    assign: ExpressionMap = Field(description="Assignment path → expression, evaluated against the context before the step.")


class TransformAssignStep(_StepBase):
    """Evaluate expressions and assign the results."""

    type: Literal["transform.assign"]
    config: AssignConfig


class StateSetConfig(_Strict):
    """Config of ``state.set``."""

    state: str = Field(description="New value of `meta.state`.")


class StateSetStep(_StepBase):
    """Set ``meta.state``."""

    type: Literal["state.set"]
    config: StateSetConfig


class TimeWaitConfig(_Strict):
    """Config of ``time.wait``: exactly one of ``durationMs`` or ``until``."""

    durationMs: int | None = Field(default=None, ge=0, le=MAX_DURATION_MS, description="Wait this many ms.")
    until: Expression | None = Field(default=None, description="Wait until this RFC 3339 instant.")
    assign: ExpressionMap | None = Field(default=None, description="Assignments on resume.")


class TimeWaitStep(_StepBase):
    """Durable timer."""

    type: Literal["time.wait"]
    config: TimeWaitConfig


class EventFilter(_Strict):
    """A condition on the inbound event's payload."""

    path: str = Field(min_length=1, description="Dot path into the event payload.")
    op: Literal["=", "!=", "in", "exists"] = Field(description="JSON equality without coercion; a missing path fails `=`, `in`, `exists` and passes `!=`.")
    value: Any = Field(default=None, description="Compared value (a list for `in`).")


class EventWaitConfig(_Strict):
    """Config of ``event.wait``."""

    eventName: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Name of the inbound event to wait for.")
    correlationKey: Expression = Field(description="Evaluated when the wait starts; non-strings go through `$string`.")
    filters: list[EventFilter] | None = Field(default=None, description="Conditions on the event payload, all of which must hold.")
    timeoutMs: int | None = Field(default=None, ge=0, le=MAX_DURATION_MS, description="Raise TimeoutError after this many ms.")
    assign: ExpressionMap | None = Field(default=None, description="Assignments on resume (after `vars.event`, `vars.eventName`).")


class EventWaitStep(_StepBase):
    """Wait for a correlated inbound event."""

    type: Literal["event.wait"]
    config: EventWaitConfig


class HumanTaskConfig(_Strict):
    """Config of ``human.task``."""

    taskType: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Task type; its registered form schema applies without `formSchema`.")
    title: Expression = Field(description="Task title.")
    description: Expression | None = Field(default=None, description="Task description.")
    contextData: dict[str, Value] | None = Field(default=None, description="Values shown to the person doing the task.")
    formSchema: dict[str, Any] | None = Field(default=None, description="Inline JSON Schema of the response.")
    timeoutMs: int | None = Field(default=None, ge=0, le=MAX_DURATION_MS, description="Raise TimeoutError (task CANCELED) after this many ms.")
    assign: ExpressionMap | None = Field(default=None, description="Assignments on resume (after `vars.event`).")


class HumanTaskStep(_StepBase):
    """Open a human task and wait for its validated response."""

    type: Literal["human.task"]
    config: HumanTaskConfig


# ------------------------------------------------------------------------------ control blocks


class IfStep(_StepBase):
    """Branch on a condition (JSONata truthiness)."""

    type: Literal["control.if"]
    condition: Expression = Field(description="JSONata condition, tested with `$boolean()` truthiness.")
    then: list[Step] = Field(description="Steps run when the condition holds.")
    else_: list[Step] | None = Field(default=None, alias="else", description="Steps run otherwise.")


class ForEachStep(_StepBase):
    """Run ``body`` once per item."""

    type: Literal["control.forEach"]
    items: Expression = Field(description="Array to iterate (undefined: none; a single value: one iteration).")
    itemVar: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Name binding the current item in expressions (not payload, vars, meta, error, loop, childRun).")
    body: list[Step] = Field(description="Steps run once per item.")
    onItemError: Literal["fail", "continue"] = Field(default="fail", description="`continue` abandons a failed item, stores its error at `error` and goes on.")
    concurrency: int = Field(
        default=1, ge=1, le=MAX_CONCURRENCY,
        description=f"Items run at once; above 1 each iteration gets its own copy of payload/vars. Nested loops multiply: at most {MAX_CONCURRENT_ITEMS:,} items at once in all.",
    )
    collect: Expression | None = Field(default=None, description="Evaluated at the end of each successful iteration.")
    saveAs: str | None = Field(default=None, description="Where the collected list (in item order) is assigned after the loop.")


class TryCatchStep(_StepBase):
    """Run ``catch`` when a catchable error leaves ``try``."""

    type: Literal["control.tryCatch"]
    try_: list[Step] = Field(alias="try", description="Steps guarded by the block.")
    catch: list[Step] = Field(description="Steps run when a catchable error leaves `try`.")
    captureErrorAs: str | None = Field(default=None, description="The error is stored at `vars.<captureErrorAs>`.")


class CallWorkflowStep(_StepBase):
    """Run a published workflow as a child run."""

    type: Literal["control.callWorkflow"]
    workflowId: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH, description="Published child workflow id.")
    workflowVersion: int = Field(ge=1, le=MAX_VERSION, description="Pinned child version.")
    inputMapping: dict[str, Value] | None = Field(default=None, description="Values forming the child payload (none gives `{}`).")
    outputMapping: dict[str, Value] | None = Field(default=None, description="Assignment path → value, evaluated with `childRun` in the context.")
    retry: RetryPolicy | None = None
    onError: OnErrorPolicy | None = None


class ReturnStep(_StepBase):
    """End the current run at once with status SUCCEEDED."""

    type: Literal["control.return"]


#: The single registry of step kinds.
Step = Annotated[
    ActionCallStep | TransformAssignStep | StateSetStep | TimeWaitStep | EventWaitStep | HumanTaskStep | IfStep | ForEachStep | TryCatchStep | CallWorkflowStep | ReturnStep,
    Field(discriminator="type"),
]

#: Keys of control blocks that hold nested step sequences, in path order.
SEQUENCE_KEYS = ("then", "else", "body", "try", "catch")


# ------------------------------------------------------------------------------------ triggers


class EventTrigger(_Strict):
    """Start a run of the latest published version for every inbound event of that name."""

    type: Literal["event"]
    eventName: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="Inbound event name that starts a run.")
    payloadMapping: dict[str, Value] | None = Field(default=None, description="Values over `{event: {name, correlationKey, payload}}`; the event payload itself when absent.")


#: Shortest catch-up window Temporal Schedules accept.
MIN_CATCHUP_WINDOW_MS: Final = 10_000
#: Default catch-up window: a fire missed while Temporal was unavailable is still made within a
#: minute of its time, and dropped after that.
DEFAULT_CATCHUP_WINDOW_MS: Final = 60_000

_CATCHUP = Field(
    default=DEFAULT_CATCHUP_WINDOW_MS, ge=MIN_CATCHUP_WINDOW_MS, le=MAX_DURATION_MS,
    description="How late a fire missed while Temporal was unavailable may still be made, in ms (at least 10,000); "
    "older missed fires are dropped, so an outage never ends in a burst of stale runs.",
)


class ScheduleTrigger(_Strict):
    """One run at an instant (a Temporal Schedule with one action)."""

    type: Literal["schedule"]
    runAt: str = Field(description="RFC 3339 instant of the one run, with an offset (`2026-11-25T10:00:00Z`); an instant already past at publish is a warning and never fires.")
    catchupWindowMs: int = _CATCHUP


class RecurringTrigger(_Strict):
    """A run at each occurrence of a cron expression (a Temporal Schedule)."""

    type: Literal["recurring"]
    cron: str = Field(description="Five-field cron (`minute hour day-of-month month day-of-week`; numbers, names, `*`, ranges, steps, lists), a macro (`@hourly`, `@daily`, …) or `@every <duration>` (`@every 10m`).")
    timezone: str = Field(description="IANA time zone of the cron expression (`UTC`, `Europe/Paris`).")
    overlap: Literal["skip", "bufferOne", "allow"] = Field(
        default="skip",
        description="A fire while the previous run is still going (not ended): `skip` it (default), "
        "`bufferOne` (start it when that run ends; at most one waits) or `allow` (start it at once).",
    )
    catchupWindowMs: int = _CATCHUP


Trigger = Annotated[EventTrigger | ScheduleTrigger | RecurringTrigger, Field(discriminator="type")]


class WorkflowDefinition(_Strict):
    """An authored workflow definition."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH, description="Stable workflow id.")
    version: int = Field(ge=1, le=MAX_VERSION, description="(id, version) is immutable once published.")
    name: str = Field(max_length=MAX_NAME_LENGTH, description="Display name.")
    description: str | None = Field(default=None, description="Free text for authors and UIs.")
    payloadSchema: dict[str, Any] | None = Field(default=None, description="JSON Schema (2020-12) of the launch payload.")
    trigger: Trigger | None = Field(default=None, description="What starts runs besides explicit launches.")
    steps: list[Step] = Field(description="The root sequence (path `root.steps`).")


for _model in (IfStep, ForEachStep, TryCatchStep, WorkflowDefinition):
    _model.model_rebuild()
