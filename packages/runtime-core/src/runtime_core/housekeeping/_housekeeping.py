"""Housekeeping: the data-store sweep, and the domain queue's housekeeping workflow.

The workflow runs each duty as its own activity, one after the other; a duty that still fails
after its retries is reported in the result (``failed``) and the others run all the same:

* ``dataStoreKeysSwept``: expired ``data.set`` keys of every tenant deleted;
* ``reconcile``: open runs whose Temporal execution has ended or is gone, ended as Temporal says
  (the operations layer's reconcile, recorded with actor ``housekeeping``);
* ``schedules``: trigger schedules converged with the published definitions;
* ``diagnoses``: stuck RUNNING runs whose diagnosis is recorded in their history (once per reason);
* ``retention``: ended runs past their tenant's retention deleted (``runtime_core.operations``'
  retention module states the rules).

This module is loaded into the workflow sandbox: the activities import the database layer and
the operations only inside their bodies.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import (
        HOUSEKEEPING_WORKFLOW,
        RECONCILE_RUNS_ACTIVITY,
        RECONCILE_SCHEDULES_ACTIVITY,
        RECORD_DIAGNOSES_ACTIVITY,
        RETENTION_ACTIVITY,
        SWEEP_ACTIVITY,
    )

if TYPE_CHECKING:
    from temporalio.client import Client

    from runtime_core.operations import Operations

__all__ = ["DUTY_RETRY", "HousekeepingActivities", "HousekeepingWorkflow", "sweep_expired"]

log = logging.getLogger("runtime_core.housekeeping")

#: Each duty is retried a few times (a database or Temporal blip), then reported as failed; the
#: next scheduled pass tries again.
DUTY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30), maximum_attempts=3)


async def sweep_expired(database: object) -> int:
    """Delete expired data-store keys of every tenant.

    Args:
        database: The runtime :class:`~runtime_core.persistence.Database`.

    Returns:
        How many keys were removed.
    """
    from sqlalchemy import delete

    from runtime_core.persistence import Database, DataStoreEntry, utcnow

    assert isinstance(database, Database)
    async with database.sessions.begin() as session:
        result = await session.execute(delete(DataStoreEntry).where(DataStoreEntry.expires_at.is_not(None), DataStoreEntry.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


class HousekeepingActivities:
    """Activities of the housekeeping workflow, over the runtime database and a Temporal client."""

    def __init__(self, database: object, client: Client | None = None, *, batch_size: int = 500) -> None:
        """Inject the database and the Temporal client of the authored namespace.

        Args:
            database: The runtime :class:`~runtime_core.persistence.Database`.
            client: Temporal client for reconcile, diagnoses and schedules (default: the client
                of the worker running the activity).
            batch_size: Run trees deleted per retention transaction.
        """
        self.database = database
        self.client = client
        self.batch_size = batch_size
        self._operations: Operations | None = None

    @property
    def activities(self) -> list[Any]:
        """Every activity of the housekeeping workflow, for ``Worker(activities=...)``."""
        return [self.sweep, self.reconcile_runs, self.reconcile_schedules, self.record_diagnoses, self.retention]

    def _client(self) -> Client:
        return self.client if self.client is not None else activity.client()

    def operations(self) -> Operations:
        """The operations layer on this database and client (built once)."""
        from runtime_core.operations import Operations
        from runtime_core.persistence import Database

        if self._operations is None:
            assert isinstance(self.database, Database)
            self._operations = Operations(self.database, self._client())
        return self._operations

    @activity.defn(name=SWEEP_ACTIVITY)
    async def sweep(self) -> int:
        """Sweep expired data-store keys."""
        return await sweep_expired(self.database)

    @activity.defn(name=RECONCILE_RUNS_ACTIVITY)
    async def reconcile_runs(self) -> dict[str, Any]:
        """End the open runs of every tenant whose Temporal execution has ended or is gone."""
        from runtime_core.operations import HOUSEKEEPING_ACTOR

        result = await self.operations().reconcile(None, actor=HOUSEKEEPING_ACTOR)
        return {"checked": result.checked, "reconciled": len(result.reconciled)}

    @activity.defn(name=RECONCILE_SCHEDULES_ACTIVITY)
    async def reconcile_schedules(self) -> dict[str, Any]:
        """Converge every tenant's trigger schedules with the published definitions."""
        from runtime_core import schedules  # imported here: the workflow module stays free of the database layer

        ops = self.operations()
        report = await schedules.reconcile_schedules(ops.database, ops.client, task_queue=activity.info().task_queue)
        return {name: len(ids) for name, ids in report.to_dict().items() if name != "problems"} | {"problems": report.problems}

    @activity.defn(name=RECORD_DIAGNOSES_ACTIVITY)
    async def record_diagnoses(self) -> dict[str, int]:
        """Record the diagnosis of each stuck RUNNING run in its history, once per reason."""
        return await self.operations().record_diagnoses()

    @activity.defn(name=RETENTION_ACTIVITY)
    async def retention(self) -> dict[str, int]:
        """Delete ended runs past their tenant's retention, and ledger rows past theirs."""
        return await self.operations().apply_retention(batch_size=self.batch_size)


#: Each duty: (key in the result, activity, how long one attempt may take).
_DUTIES = (
    ("dataStoreKeysSwept", SWEEP_ACTIVITY, timedelta(minutes=5)),
    ("reconcile", RECONCILE_RUNS_ACTIVITY, timedelta(minutes=10)),
    ("schedules", RECONCILE_SCHEDULES_ACTIVITY, timedelta(minutes=10)),
    ("diagnoses", RECORD_DIAGNOSES_ACTIVITY, timedelta(minutes=10)),
    ("retention", RETENTION_ACTIVITY, timedelta(minutes=30)),
)


@workflow.defn(name=HOUSEKEEPING_WORKFLOW)
class HousekeepingWorkflow:
    """One housekeeping pass on the domain queue (the ``wfr:housekeeping`` schedule starts it)."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        """Run every duty once and report what each did.

        Returns:
            One key per duty that completed (its count or counts), and ``failed``: the duties
            that failed after their retries, each with its last error.
        """
        result: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for key, name, timeout in _DUTIES:
            try:
                result[key] = await workflow.execute_activity(name, start_to_close_timeout=timeout, retry_policy=DUTY_RETRY)
            except ActivityError as err:
                cause = err.cause
                failed[key] = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
                workflow.logger.warning("housekeeping duty %s failed: %s", key, failed[key])
        result["failed"] = failed
        return result
