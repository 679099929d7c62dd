"""Publishing: validate a batch of definitions and store immutable versions, all or nothing.

Publishing never raises for what a caller sends: any document (any JSON-ish value) is either
published or refused with every problem found, each naming the step path and the fix, and a
refused batch writes nothing. Only an unusable database (unreachable, down) raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from runtime_core.actions import ActionRegistry
from runtime_core.contract import SEMANTICS_VERSION
from runtime_core.dsl import (
    MAX_CONCURRENT_ITEMS,
    MAX_ID_LENGTH,
    MAX_STEP_PATH_LENGTH,
    MAX_VERSION,
    ForEachStep,
    IfStep,
    Problem,
    ScheduleTrigger,
    Step,
    TryCatchStep,
    ValidationContext,
    WorkflowDefinition,
    definition_hash,
    parse_instant,
    validate_definition,
)
from runtime_core.persistence import Database, DefinitionVersion, WorkflowDefinitionRow, utcnow
from runtime_core.values import MAX_DEFINITION_BYTES, MAX_DEPTH, MAX_INT, ValueProblem, check_value, node_problem, safe_text

__all__ = ["PublishOutcome", "PublishedVersion", "publish_definitions"]

log = logging.getLogger(__name__)

#: Longest tenant name (its database columns).
_MAX_TENANT_LENGTH = 128
#: Value problems listed per document; the rest are counted.
_MAX_VALUE_PROBLEMS = 20
#: Keys of a step holding nested step sequences, and the path segment each gets.
_SEQUENCES = ("then", "else", "body", "try", "catch")


@dataclass(frozen=True)
class PublishedVersion:
    """One ``(workflow id, version)`` of a successful publish."""

    workflow_id: str
    version: int
    definition_hash: str
    created: bool


@dataclass
class PublishOutcome:
    """Result of publishing a batch: everything published, or nothing and every problem."""

    published: bool
    problems: list[dict[str, Any]] = field(default_factory=list)
    versions: list[PublishedVersion] = field(default_factory=list)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The problems of severity ``error``."""
        return [p for p in self.problems if p["severity"] == "error"]


def _error(step_path: str | None, step_id: str | None, code: str, message: str) -> Problem:
    return Problem("error", step_path or "root", step_id, code, message)


def _tag(problem: Problem, document: Any) -> dict[str, Any]:
    """The problem's JSON form with the document's id and version, made safe to store and print."""
    out = problem.to_dict()
    out["message"] = safe_text(str(out["message"]))
    out["stepPath"] = safe_text(out["stepPath"], MAX_STEP_PATH_LENGTH) if isinstance(out["stepPath"], str) else "root"
    out["stepId"] = safe_text(out["stepId"], MAX_ID_LENGTH) if isinstance(out["stepId"], str) else None
    if isinstance(document, dict):
        workflow_id, version = document.get("id"), document.get("version")
        out = {
            "workflowId": safe_text(workflow_id, MAX_ID_LENGTH) if isinstance(workflow_id, str) else None,
            "version": version if type(version) is int and abs(version) <= MAX_INT else None,
            **out,
        }
    return out


def _tenant_problem(tenant: Any) -> Problem | None:
    if not isinstance(tenant, str) or not tenant:
        return _error("root", None, "INVALID_TENANT", f"the tenant must be a non-empty string, not {type(tenant).__name__}")
    if len(tenant) > _MAX_TENANT_LENGTH:
        return _error("root", None, "INVALID_TENANT", f"the tenant is {len(tenant)} characters long; use at most {_MAX_TENANT_LENGTH}")
    try:
        check_value(tenant, "tenant")
    except ValueProblem as problem:
        return _error("root", None, "INVALID_TENANT", str(problem))
    return None


def _screen(document: Any) -> list[Problem]:
    """Problems that make a document unsafe to validate or store: not JSON the runtime accepts, or too large.

    Each is named by the step it is in and its path inside that step (or the definition).
    """
    try:
        check_value(document, "root", limit=MAX_DEFINITION_BYTES, what="definition")
        return []
    except ValueProblem as problem:
        if problem.code == "VALUE_TOO_LARGE":
            return [_error("root", None, "DEFINITION_TOO_LARGE", f"{problem.reason}, or split the definition into workflows called with control.callWorkflow")]
    problems: list[Problem] = []
    skipped = 0
    for step_path, step_id, where, node, depth in _nodes(document):
        found = ValueProblem(where, f"nests deeper than {MAX_DEPTH} levels; flatten the data") if depth > MAX_DEPTH else node_problem(node, where)
        if found is None:
            continue
        if isinstance(node, int) and not isinstance(node, bool):
            found = ValueProblem(where, "is an integer beyond 64 bits, which the runtime cannot store; use a smaller number (versions, attempts and durations have lower limits, see docs/dsl.md) or a string")
        if len(problems) < _MAX_VALUE_PROBLEMS:
            problems.append(_error(step_path, step_id, found.code, str(found)))
        else:
            skipped += 1
    if skipped:
        problems.append(_error("root", None, "INVALID_VALUE", f"{skipped} more values like these were not listed; fix the ones above and publish again"))
    return problems


def _nodes(document: Any) -> Iterator[tuple[str, str | None, str, Any, int]]:
    """Every node as ``(stepPath, stepId, path inside the step, node, depth)``, depth first.

    Nested steps are named like the interpreter names them (``root.steps[0].then.steps[1]``);
    nothing deeper than :data:`MAX_DEPTH` is entered.
    """
    stack: list[tuple[Any, str, str | None, str, int, bool]] = [(document, "root", None, "", 0, False)]
    while stack:
        node, step_path, step_id, where, depth, is_step = stack.pop()
        yield step_path, step_id, where or ("the step" if is_step else "the definition"), node, depth
        if depth > MAX_DEPTH:
            continue
        children: list[tuple[Any, str, str | None, str, int, bool]] = []
        if isinstance(node, dict):
            at_root = step_path == "root" and not where and not is_step
            for key, item in node.items():
                label = safe_text(key, 80) if isinstance(key, str) else repr(key)
                is_sequence = isinstance(item, list) and ((at_root and key == "steps") or (is_step and key in _SEQUENCES))
                if is_sequence:
                    prefix = "root.steps" if at_root else f"{step_path}.{key}.steps"
                    for index, inner in enumerate(item):
                        inner_path = f"{prefix}[{index}]"
                        if isinstance(inner, dict):
                            inner_id = inner.get("id")
                            children.append((inner, inner_path, safe_text(inner_id, MAX_ID_LENGTH) if isinstance(inner_id, str) else None, "", depth + 2, True))
                        else:
                            children.append((inner, inner_path, None, "", depth + 2, False))
                else:
                    children.append((item, step_path, step_id, f"{where}.{label}" if where else label, depth + 1, False))
        elif isinstance(node, list | tuple):
            children = [(item, step_path, step_id, f"{where}[{index}]", depth + 1, False) for index, item in enumerate(node)]
        stack.extend(reversed(children))


def _sequences(step: Step) -> Iterator[tuple[str, list[Step]]]:
    if isinstance(step, IfStep):
        yield "then", step.then
        if step.else_ is not None:
            yield "else", step.else_
    elif isinstance(step, ForEachStep):
        yield "body", step.body
    elif isinstance(step, TryCatchStep):
        yield "try", step.try_
        yield "catch", step.catch


def _limit_problems(model: WorkflowDefinition) -> list[Problem]:
    """Limits that span steps: step path length, items running at once through nested loops."""
    problems: list[Problem] = []

    def walk(steps: list[Step], prefix: str, in_flight: int) -> None:
        for index, step in enumerate(steps):
            path = f"{prefix}[{index}]"
            if len(path) > MAX_STEP_PATH_LENGTH:
                problems.append(_error(path[:200] + "…", step.id, "STEP_PATH_TOO_LONG", f"the step path is {len(path)} characters long, over {MAX_STEP_PATH_LENGTH}; nest fewer blocks"))
                continue
            here = in_flight
            if isinstance(step, ForEachStep):
                here = in_flight * step.concurrency
                if here > MAX_CONCURRENT_ITEMS >= in_flight:
                    problems.append(_error(
                        path, step.id, "TOO_MANY_CONCURRENT_ITEMS",
                        f"concurrency {step.concurrency} inside loops running {in_flight} items at once runs up to {here:,} items at once, over the limit of "
                        f"{MAX_CONCURRENT_ITEMS:,}; lower the concurrency of this loop or an enclosing one",
                    ))
            for key, inner in _sequences(step):
                walk(inner, f"{path}.{key}.steps", here)

    walk(model.steps, "root.steps", 1)
    return problems


def _past_run_at(model: WorkflowDefinition) -> list[Problem]:
    """A one-time trigger whose instant has already passed: published, but it never fires (a warning)."""
    trigger = model.trigger
    if not isinstance(trigger, ScheduleTrigger):
        return []
    instant = parse_instant(trigger.runAt)
    if instant is None or instant > datetime.now(UTC):
        return []
    return [Problem(
        "warning", "trigger.runAt", None, "RUN_AT_IN_PAST",
        f"runAt {trigger.runAt} has already passed, so this trigger never fires; set a future instant, or launch the run directly",
    )]


async def publish_definitions(
    database: Database,
    registry: ActionRegistry,
    tenant: str,
    documents: list[Any],
    *,
    extra_actions: Iterable[tuple[str, int]] = (),
    dry_run: bool = False,
) -> PublishOutcome:
    """Validate ``documents`` as one batch (in any order) and publish them.

    A definition may call another of the same batch. Republishing identical content is a no-op;
    different content under a published ``(id, version)`` is refused. Any document is accepted
    as input: one that is not a definition, not JSON the runtime can store, or beyond a limit
    (docs/dsl.md, "Limits") is refused with problems, never with an exception.

    Args:
        database: The authoring database.
        registry: Registered actions, for ``action.call`` checks.
        tenant: Owner of the definitions.
        documents: Parsed JSON documents.
        extra_actions: ``(action id, version)`` pairs to treat as registered (scenario mocks).
        dry_run: Validate only: report the problems (and ``published`` as it would be), store nothing.

    Returns:
        The outcome; when any problem is an error, nothing was written.
    """
    tenant_problem = _tenant_problem(tenant)
    if tenant_problem is not None:
        return PublishOutcome(published=False, problems=[_tag(tenant_problem, None)])
    if not isinstance(documents, list | tuple):
        return PublishOutcome(published=False, problems=[_tag(_error("root", None, "SCHEMA_NOT_A_BATCH", f"documents must be a list of definitions, not {type(documents).__name__}"), None)])
    extra = set(extra_actions)
    batch = {(d["id"], d["version"]) for d in documents if isinstance(d, dict) and isinstance(d.get("id"), str) and type(d.get("version")) is int}
    async with database.sessions() as session:
        rows = (await session.execute(select(DefinitionVersion.workflow_id, DefinitionVersion.version, DefinitionVersion.definition_hash).where(DefinitionVersion.tenant == tenant))).all()
    stored = {(r[0], r[1]): r[2] for r in rows}
    ctx = ValidationContext(
        is_action_registered=lambda a, v: registry.is_registered(a, v) or (a, v) in extra,
        is_workflow_published=lambda w, v: (w, v) in batch or (w, v) in stored,
    )
    problems: list[dict[str, Any]] = []
    models: list[tuple[WorkflowDefinition, dict[str, Any], str]] = []
    seen: set[tuple[str, int]] = set()
    for document in documents:
        screened = _screen(document)
        if screened:
            problems.extend(_tag(p, document) for p in screened)
            continue
        try:
            model, found = validate_definition(document, ctx)
            if model is not None:
                found = [*found, *_limit_problems(model), *_past_run_at(model)]
                canonical = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
                digest = definition_hash(canonical)
        except Exception as err:  # validation must answer with problems, whatever the document
            log.exception("validating a definition failed")
            problems.append(_tag(_error("root", None, "VALIDATION_FAILED", f"the definition could not be validated ({type(err).__name__}: {err}); check it against docs/dsl.md and report this message"), document))
            continue
        problems.extend(_tag(p, document) for p in found)
        if model is None:
            continue
        key = (model.id, model.version)
        if key in seen:
            problems.append(_tag(_error("root", None, "DUPLICATE_IN_BATCH", f"{model.id!r} version {model.version} appears twice in this batch"), document))
        seen.add(key)
        if key in stored and stored[key] != digest:
            following = min(max(v for (w, v) in stored if w == model.id) + 1, MAX_VERSION)
            problems.append(_tag(_error("root", None, "VERSION_IMMUTABLE", f"{model.id!r} version {model.version} is already published with different content; publish it as version {following}"), document))
        models.append((model, canonical, digest))
    if any(p["severity"] == "error" for p in problems):
        return PublishOutcome(published=False, problems=problems)
    if dry_run:
        return PublishOutcome(published=True, problems=problems)

    try:
        return PublishOutcome(published=True, problems=problems, versions=await _store(database, tenant, models, stored))
    except IntegrityError:
        # Another publish of the same (id, version) committed first: nothing of ours was written.
        conflict = _error("root", None, "CONCURRENT_PUBLISH", "another publish of the same workflow version committed first; publish again to compare")
        return PublishOutcome(published=False, problems=[*problems, _tag(conflict, None)])
    except StatementError as err:
        # A value the database refused although every check above passed; an unusable database
        # (unreachable, down) still raises.
        if isinstance(err, DBAPIError) and not isinstance(err, DataError):
            raise
        log.warning("the database refused a definition that passed validation: %s", err.orig)
        refused = _error("root", None, "STORE_REFUSED", f"the database refused the definitions ({type(err.orig).__name__}: {err.orig}); nothing was published")
        return PublishOutcome(published=False, problems=[*problems, _tag(refused, None)])


async def _store(database: Database, tenant: str, models: list[tuple[WorkflowDefinition, dict[str, Any], str]], stored: dict[tuple[str, int], str]) -> list[PublishedVersion]:
    versions: list[PublishedVersion] = []
    now = utcnow()
    async with database.sessions.begin() as session:
        for model, canonical, digest in models:
            key = (model.id, model.version)
            if key in stored:
                versions.append(PublishedVersion(model.id, model.version, digest, created=False))
                continue
            head = (await session.execute(select(WorkflowDefinitionRow).where(WorkflowDefinitionRow.tenant == tenant, WorkflowDefinitionRow.workflow_id == model.id))).scalar_one_or_none()
            if head is None:
                session.add(WorkflowDefinitionRow(tenant=tenant, workflow_id=model.id, name=model.name, description=model.description, latest_version=model.version, created_at=now, updated_at=now))
            elif model.version > head.latest_version:
                head.latest_version, head.name, head.description, head.updated_at = model.version, model.name, model.description, now
            trigger = model.trigger
            session.add(
                DefinitionVersion(
                    tenant=tenant, workflow_id=model.id, version=model.version, definition_hash=digest, document=canonical,
                    semantics_version=SEMANTICS_VERSION, trigger_type=trigger.type if trigger else None,
                    trigger_event_name=getattr(trigger, "eventName", None), published_at=now,
                )
            )
            versions.append(PublishedVersion(model.id, model.version, digest, created=True))
    return versions
