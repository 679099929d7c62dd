"""Human tasks: registering form schemas and completing tasks with validated responses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from temporalio.client import Client

from runtime_core.contract import HUMAN_TASK_SIGNAL, workflow_id_for_run
from runtime_core.dsl import schema_problems
from runtime_core.dsl._validate import schema_definition_problems
from runtime_core.persistence import Database, TaskDefinition, TaskRow, utcnow
from runtime_core.values import ValueProblem, check_value, safe_text

__all__ = ["TaskError", "TaskResponseRejected", "complete_task", "register_task_definition"]


class TaskError(ValueError):
    """A task operation refused; the message says why and nothing changed."""


class TaskResponseRejected(TaskError):
    """A response that does not match the task's form schema; the task stays open."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        """Describe the rejection.

        Args:
            message: Summary.
            errors: One ``{path, message}`` per JSON Schema error.
        """
        super().__init__(message)
        self.errors = errors


async def register_task_definition(database: Database, tenant: str, task_type: str, form_schema: dict[str, Any]) -> None:
    """Register (or replace) a tenant's form schema for a task type.

    The schema is checked like an inline ``formSchema`` at publish: a valid JSON Schema 2020-12,
    regular expressions RE2 can run (responses are validated with RE2), only local ``$ref``s.

    Raises:
        TaskError: The schema cannot be used; the message lists every problem with its path.
    """
    if not isinstance(tenant, str) or not tenant or len(tenant) > 128:
        raise TaskError("tenant must be a non-empty string of at most 128 characters")
    if not isinstance(task_type, str) or not task_type or len(task_type) > 200:
        raise TaskError("the task type must be a non-empty string of at most 200 characters")
    try:
        check_value(task_type, "taskType")
        check_value(form_schema, "formSchema")
    except ValueProblem as problem:
        raise TaskError(f"form schema for {task_type[:200]!r} cannot be stored: {problem}") from None
    problems = schema_definition_problems(form_schema, "formSchema")
    if problems:
        raise TaskError(f"form schema for {task_type!r} cannot be used: " + "; ".join(f"{path}: {message}" for _code, path, message in problems))
    now = utcnow()
    async with database.sessions.begin() as session:
        row = (await session.execute(select(TaskDefinition).where(TaskDefinition.tenant == tenant, TaskDefinition.task_type == task_type))).scalar_one_or_none()
        if row is None:
            session.add(TaskDefinition(tenant=tenant, task_type=task_type, form_schema=form_schema, created_at=now, updated_at=now))
        else:
            row.form_schema, row.updated_at = form_schema, now


async def complete_task(
    database: Database, client: Client, tenant: str, task_id: str, response: Any, *, admin: bool = False, actor: str | None = None
) -> None:
    """Validate a response and resume the waiting run.

    The response is checked against the task's form schema before anything changes; an admin
    override skips the check and is recorded with the actor. The task is claimed atomically
    (PENDING → COMPLETED), so two concurrent completions cannot both succeed.

    Raises:
        TaskResponseRejected: The response is not JSON the runtime accepts, or does not match the
            form schema (task stays PENDING).
        TaskError: An argument is not acceptable, no such task for this tenant, already closed, or
            the run could not be told. Nothing changed.
    """
    _check_completion(tenant, task_id, actor)
    try:
        check_value(response, "response")
    except ValueProblem as problem:
        raise TaskResponseRejected(f"the response is not acceptable: {safe_text(str(problem))}", [{"path": safe_text(problem.where, 500), "message": safe_text(problem.reason)}]) from None
    async with database.sessions() as session:
        task = await session.get(TaskRow, task_id)
    if task is None or task.tenant != tenant:
        raise TaskError(f"task {task_id} not found for tenant {tenant!r}")
    if task.status != "PENDING":
        raise TaskError(f"task {task_id} is {task.status}, not PENDING")
    if admin and not actor:
        raise TaskError("an admin override must name who did it (actor)")
    if not admin and task.form_schema is not None:
        try:
            problems = schema_problems(task.form_schema, response, "response")
        except Exception as err:  # a form schema the validator cannot apply must not escape as its own exception
            raise TaskError(
                f"the form schema of task {task_id} could not be applied ({type(err).__name__}: {safe_text(str(err), 300)}); "
                "an admin override (actor) can complete it without validation"
            ) from None
        if problems:
            raise TaskResponseRejected("the response does not match the task's form schema: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems), problems)
    async with database.sessions.begin() as session:
        claimed = await session.execute(
            update(TaskRow)
            .where(TaskRow.task_id == task_id, TaskRow.status == "PENDING")
            .values(status="COMPLETED", response=response, completed_by=actor, admin_override=admin, completed_at=utcnow())
        )
    if getattr(claimed, "rowcount", 0) != 1:
        raise TaskError(f"task {task_id} was completed concurrently")
    try:
        await client.get_workflow_handle(workflow_id_for_run(task.run_id)).signal(HUMAN_TASK_SIGNAL, {"taskId": task_id, "response": response, "admin": admin, "actor": actor})
    except Exception as err:
        async with database.sessions.begin() as session:  # give the task back: nothing half-done
            await session.execute(update(TaskRow).where(TaskRow.task_id == task_id).values(status="PENDING", response=None, completed_by=None, admin_override=False, completed_at=None))
        raise TaskError(f"could not resume run {task.run_id}: {err}") from err


#: Lengths of the columns a completion is looked up by or recorded in.
_MAX_TASK_ID_LENGTH = 64
_MAX_TENANT_LENGTH = 128
_MAX_ACTOR_LENGTH = 200


def _check_completion(tenant: Any, task_id: Any, actor: Any) -> None:
    """Refuse arguments that cannot name a task or be recorded, naming the field and the fix.

    Raises:
        TaskError: An argument is not acceptable.
    """
    for name, value, longest in (("tenant", tenant, _MAX_TENANT_LENGTH), ("task id", task_id, _MAX_TASK_ID_LENGTH), ("actor", actor, _MAX_ACTOR_LENGTH)):
        if value is None and name == "actor":
            continue
        if not isinstance(value, str) or not value:
            raise TaskError(f"the {name} must be a non-empty string, not {type(value).__name__}")
        if len(value) > longest:
            raise TaskError(f"the {name} is {len(value)} characters long; use at most {longest}" + (" (task ids are 32 hex digits)" if name == "task id" else ""))
        try:
            check_value(value, name)
        except ValueProblem as problem:
            raise TaskError(safe_text(str(problem))) from None
