"""Housekeeping: the data-store sweep, and the domain queue's housekeeping workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from runtime_core.contract import HOUSEKEEPING_WORKFLOW, SWEEP_ACTIVITY

__all__ = ["HousekeepingActivities", "HousekeepingWorkflow", "sweep_expired"]


async def sweep_expired(database: object) -> int:
    """Delete expired data-store keys of every tenant; returns how many were removed."""
    from sqlalchemy import delete

    from runtime_core.persistence import Database, DataStoreEntry, utcnow

    assert isinstance(database, Database)
    async with database.sessions.begin() as session:
        result = await session.execute(delete(DataStoreEntry).where(DataStoreEntry.expires_at.is_not(None), DataStoreEntry.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


class HousekeepingActivities:
    """Activities of the housekeeping workflow."""

    def __init__(self, database: object) -> None:
        """Inject the database."""
        self.database = database

    @activity.defn(name=SWEEP_ACTIVITY)
    async def sweep(self) -> int:
        """Sweep expired data-store keys."""
        return await sweep_expired(self.database)


@workflow.defn(name=HOUSEKEEPING_WORKFLOW)
class HousekeepingWorkflow:
    """One housekeeping pass on the domain queue (schedules will run it periodically)."""

    @workflow.run
    async def run(self) -> dict[str, int]:
        """Run every housekeeping job once and report what each did."""
        swept = await workflow.execute_activity(SWEEP_ACTIVITY, start_to_close_timeout=timedelta(minutes=5), result_type=int)
        return {"dataStoreKeysSwept": swept}
