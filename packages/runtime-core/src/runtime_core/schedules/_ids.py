"""Schedule ids: ``wfr:{tenant}:{workflowId}:{key}``, ``key`` derived from the trigger as published."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from runtime_core.contract import SCHEDULE_ID_PREFIX
from runtime_core.dsl import canonical_json

__all__ = ["launch_key", "parse_schedule_id", "schedule_id", "trigger_key"]

#: Longest idempotency key the launcher accepts.
_MAX_LAUNCH_KEY = 300
_WORKFLOW_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KEY = re.compile(r"^[0-9a-f]{12}$")


def trigger_key(trigger: dict[str, Any]) -> str:
    """The first 12 hex characters of the SHA-256 of the trigger's canonical JSON (all its fields, as published)."""
    return hashlib.sha256(canonical_json(trigger).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def schedule_id(tenant: str, workflow_id: str, trigger: dict[str, Any]) -> str:
    """The Temporal Schedule id of a trigger of a published workflow.

    Args:
        tenant: Owner of the workflow.
        workflow_id: The workflow's id.
        trigger: The trigger object as published (the stored document's ``trigger``).

    Returns:
        ``wfr:{tenant}:{workflowId}:{key}``: a changed trigger (another cron, zone, instant or
        policy) gets another id.
    """
    return f"{SCHEDULE_ID_PREFIX}{tenant}:{workflow_id}:{trigger_key(trigger)}"


def parse_schedule_id(value: str) -> tuple[str, str, str] | None:
    """Split a schedule id made by :func:`schedule_id`.

    A tenant may contain ``:``; a workflow id and a key never do, so the id is split from the right.

    Returns:
        ``(tenant, workflow_id, key)``, or ``None`` when ``value`` is not a runtime schedule id.
    """
    if not isinstance(value, str) or not value.startswith(SCHEDULE_ID_PREFIX):
        return None
    parts = value[len(SCHEDULE_ID_PREFIX):].rsplit(":", 2)
    if len(parts) != 3:
        return None
    tenant, workflow_id, key = parts
    if not tenant or not _WORKFLOW_ID.match(workflow_id) or not _KEY.match(key):
        return None
    return tenant, workflow_id, key


def launch_key(schedule: str, scheduled_at: str) -> str:
    """The launch idempotency key of one fire: ``{scheduleId}@{scheduledAt}``.

    One beyond the launcher's 300 characters (a very long tenant and workflow id) is replaced by
    ``schedule:`` and its SHA-256, still one key per fire.
    """
    key = f"{schedule}@{scheduled_at}"
    if len(key) > _MAX_LAUNCH_KEY:
        key = "schedule:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key
