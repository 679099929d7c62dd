"""Publishing: validate a batch of definitions and store immutable versions, all or nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from runtime_core.actions import ActionRegistry
from runtime_core.contract import SEMANTICS_VERSION
from runtime_core.dsl import Problem, ValidationContext, WorkflowDefinition, definition_hash, validate_definition
from runtime_core.persistence import Database, DefinitionVersion, WorkflowDefinitionRow, utcnow

__all__ = ["PublishOutcome", "PublishedVersion", "publish_definitions"]


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


def _tag(problem: Problem, document: Any) -> dict[str, Any]:
    out = problem.to_dict()
    if isinstance(document, dict):
        out = {"workflowId": document.get("id"), "version": document.get("version"), **out}
    return out


async def publish_definitions(
    database: Database,
    registry: ActionRegistry,
    tenant: str,
    documents: list[Any],
    *,
    extra_actions: Iterable[tuple[str, int]] = (),
) -> PublishOutcome:
    """Validate ``documents`` as one batch (in any order) and publish them.

    A definition may call another of the same batch. Republishing identical content is a no-op;
    different content under a published ``(id, version)`` is refused.

    Args:
        database: The authoring database.
        registry: Registered actions, for ``action.call`` checks.
        tenant: Owner of the definitions.
        documents: Parsed JSON documents.
        extra_actions: ``(action id, version)`` pairs to treat as registered (scenario mocks).

    Returns:
        The outcome; when any problem is an error, nothing was written.
    """
    extra = set(extra_actions)
    batch = {(d.get("id"), d.get("version")) for d in documents if isinstance(d, dict)}
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
        model, found = validate_definition(document, ctx)
        problems.extend(_tag(p, document) for p in found)
        if model is None:
            continue
        key = (model.id, model.version)
        canonical = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
        digest = definition_hash(canonical)
        if key in seen:
            problems.append(_tag(Problem("error", "root", None, "DUPLICATE_IN_BATCH", f"{model.id!r} version {model.version} appears twice in this batch"), document))
        seen.add(key)
        if key in stored and stored[key] != digest:
            problems.append(_tag(Problem("error", "root", None, "VERSION_IMMUTABLE", f"{model.id!r} version {model.version} is already published with different content; publish it as version {max(v for (w, v) in stored if w == model.id) + 1}"), document))
        models.append((model, canonical, digest))
    if any(p["severity"] == "error" for p in problems):
        return PublishOutcome(published=False, problems=problems)

    try:
        return PublishOutcome(published=True, problems=problems, versions=await _store(database, tenant, models, stored))
    except IntegrityError:
        # Another publish of the same (id, version) committed first: nothing of ours was written.
        conflict = Problem("error", "root", None, "CONCURRENT_PUBLISH", "another publish of the same workflow version committed first; publish again to compare")
        return PublishOutcome(published=False, problems=[*problems, conflict.to_dict()])


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
