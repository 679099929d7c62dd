"""Who polls the authored queue: only workflow-worker processes may (identity prefix ``workflow-worker@``)."""

from __future__ import annotations

import logging
import os
import socket

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime_core.contract import TASK_QUEUE

__all__ = ["AUTHORED_IDENTITY_PREFIX", "ForeignPoller", "check_ownership", "foreign_pollers", "process_identity"]

log = logging.getLogger("runtime_core.worker.ownership")

#: Every workflow-worker process's Temporal identity starts with this.
AUTHORED_IDENTITY_PREFIX = "workflow-worker@"


class ForeignPoller(RuntimeError):
    """A process that is not a workflow-worker polls workflow-runtime-v2 and ownership is strict."""


def process_identity(name: str) -> str:
    """The Temporal client and worker identity of this process: ``{name}@{hostname}:{pid}``."""
    return f"{name}@{socket.gethostname()}:{os.getpid()}"


async def foreign_pollers(client: Client) -> dict[str, list[str]]:
    """Pollers of workflow-runtime-v2 (workflow and activity tasks) whose identity is not a workflow-worker's.

    Temporal remembers a poller for a few minutes after its last poll, so a stopped stray
    process is still reported for that long.

    Returns:
        Each foreign identity with the task types (``workflow``, ``activity``) it polls.

    Raises:
        RuntimeError: The namespace does not exist (the message names WFR_TEMPORAL_NAMESPACE).
    """
    found: dict[str, list[str]] = {}
    for kind, queue_type in (("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)):
        request = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=TASK_QUEUE), task_queue_type=queue_type)
        try:
            response = await client.workflow_service.describe_task_queue(request)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise RuntimeError(f"Temporal has no namespace {client.namespace!r} ({err.message}); check WFR_TEMPORAL_NAMESPACE") from None
            raise
        for poller in response.pollers:
            if not poller.identity.startswith(AUTHORED_IDENTITY_PREFIX):
                found.setdefault(poller.identity, []).append(kind)
    return found


async def check_ownership(client: Client, process: str, *, strict: bool) -> dict[str, list[str]]:
    """Log, once and loudly, every process other than a workflow-worker polling workflow-runtime-v2.

    Args:
        client: Connected client of the namespace to check.
        process: Name of the checking process, for the message.
        strict: Raise instead of only logging.

    Returns:
        The foreign pollers found (empty when the queue is owned by workflow-workers alone).

    Raises:
        ForeignPoller: ``strict`` and at least one foreign poller; the message names each identity.
    """
    found = await foreign_pollers(client)
    for identity, kinds in sorted(found.items()):
        log.error(
            "OWNERSHIP: %r polls %s tasks of %s in namespace %s but is not a workflow-worker (identity prefix %r); "
            "it will take authored runs' tasks it may not be able to run. Stop that process.",
            identity, "+".join(kinds), TASK_QUEUE, client.namespace, AUTHORED_IDENTITY_PREFIX,
        )
    if found and strict:
        names = ", ".join(repr(identity) for identity in sorted(found))
        raise ForeignPoller(
            f"{process}: foreign poller(s) of {TASK_QUEUE} in namespace {client.namespace!r}: {names}. "
            f"Only workflow-worker processes (identity {AUTHORED_IDENTITY_PREFIX}…) may poll it: stop them, "
            "or run without --strict / WFR_STRICT_OWNERSHIP=1 to only log them."
        )
    return found
