"""Per-tenant retention and the housekeeping duties that need the operations layer.

Retention (applied by the domain worker's housekeeping workflow):

* A **root run** that has ended (``SUCCEEDED``, ``FAILED``, ``CANCELED``) longer ago than its
  tenant's ``run_retention_days`` is deleted together with every run of its tree (its children
  and theirs, all sharing its ``root_run_id``), provided every run of the tree has ended too; a
  tree with one open run is left whole. A child is never deleted on its own: a tree is read
  whole or not at all.
* With a run go its projections: steps, waits, human tasks, snapshots, its operator history
  (``workflow_run_actions``) and the event deliveries that targeted it (``PENDING`` ones aside:
  the dispatcher owns those). Inbound events stay: they are the record that makes an
  ``eventId`` idempotent, and are not a run's projection.
* Deletion goes in batches (``batch_size`` trees per transaction) so a large backlog never holds
  one long transaction; the run rows are deleted only while still ended (a run resumed
  meanwhile makes its batch roll back and wait for the next pass).
* The **idempotency ledger** (``workflow_action_invocations``) outlives its runs: an action's
  idempotency key can be an authored expression (an order number) that comes back in a later
  run, and the ledger is what stops the side effect happening twice. A ledger row is deleted
  only when it is older than ``ledger_retention_days`` (365 unless set) **and** its run is
  gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from runtime_core import metrics
from runtime_core.operations._base import TERMINAL, iso
from runtime_core.operations._errors import Invalid
from runtime_core.operations._runs import RunReads
from runtime_core.operations._schemas import DEFAULT_LEDGER_RETENTION_DAYS, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, RetentionSettings
from runtime_core.persistence import (
    ActionInvocation,
    EventDelivery,
    RunAction,
    RunRow,
    RunSnapshot,
    StepRow,
    TaskRow,
    TenantSettings,
    WaitRow,
    utcnow,
)

__all__ = ["HOUSEKEEPING_ACTOR", "Retention"]

#: The actor of what housekeeping records in a run's history.
HOUSEKEEPING_ACTOR = "housekeeping"
#: Trees deleted per transaction.
DEFAULT_BATCH = 500


class _BatchChanged(Exception):
    """A run of the batch is no longer ended: roll the batch back."""


def _days(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        raise Invalid(f"{field} must be a whole number of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, or null to keep forever; not {value!r}",
                      errors=[{"path": field, "code": "OUT_OF_RANGE", "message": f"{MIN_RETENTION_DAYS}–{MAX_RETENTION_DAYS} days, or null"}])
    return value


def _view(tenant: str, row: TenantSettings | None) -> RetentionSettings:
    if row is None:
        return RetentionSettings(tenant=tenant, runRetentionDays=None, ledgerRetentionDays=DEFAULT_LEDGER_RETENTION_DAYS, updatedAt=None, updatedBy=None)
    return RetentionSettings(tenant=tenant, runRetentionDays=row.run_retention_days, ledgerRetentionDays=row.ledger_retention_days or DEFAULT_LEDGER_RETENTION_DAYS,
                             updatedAt=iso(row.updated_at), updatedBy=row.updated_by)


class Retention(RunReads):
    """Tenant retention settings, retention itself and the recorded stuck-run diagnoses."""

    # ---------------------------------------------------------------------------- settings

    async def get_tenant_settings(self, tenant: str) -> RetentionSettings:
        """The tenant's retention (runs kept forever and the ledger 365 days when never set).

        Args:
            tenant: Whose settings.
        """
        async with self.database.sessions() as session:
            row = await session.get(TenantSettings, tenant)
        return _view(tenant, row)

    async def set_retention(self, tenant: str, run_days: int | None, ledger_days: int | None = None, *, actor: str | None) -> RetentionSettings:
        """Set how long the tenant's ended runs and idempotency-ledger rows are kept.

        Args:
            tenant: Whose settings.
            run_days: Ended runs older than this many days are deleted (``None``: kept forever).
            ledger_days: Ledger rows older than this whose run is gone are deleted (``None``: 365).
            actor: Who changed it (recorded as ``updatedBy``).

        Raises:
            Invalid: A number of days outside 1–36500 (the message names the field).
        """
        runs = _days(run_days, "runRetentionDays")
        ledger = _days(ledger_days, "ledgerRetentionDays")
        for _ in range(3):  # two writers creating the row at once: the loser updates it
            try:
                async with self.database.sessions.begin() as session:
                    row = await session.get(TenantSettings, tenant)
                    if row is None:
                        row = TenantSettings(tenant=tenant)
                        session.add(row)
                    row.run_retention_days, row.ledger_retention_days = runs, ledger
                    row.updated_at, row.updated_by = utcnow(), actor
                break
            except IntegrityError:
                continue
        return await self.get_tenant_settings(tenant)

    # --------------------------------------------------------------------------- retention

    async def apply_retention(self, *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH) -> dict[str, int]:
        """Delete what every tenant's retention says may go (see the module's rules).

        Args:
            now: The instant retention is measured from (default: now).
            batch_size: Run trees (and ledger rows) per transaction.

        Returns:
            Counts: ``tenants`` (with a setting), ``runsDeleted`` (roots and children),
            ``treesKept`` (old ended roots kept because a run of their tree is still open),
            ``ledgerRowsDeleted``, ``batches`` (transactions that deleted something).
        """
        now = now or utcnow()
        async with self.database.sessions() as session:
            settings = list((await session.execute(select(TenantSettings))).scalars())
        counts = {"tenants": len(settings), "runsDeleted": 0, "treesKept": 0, "ledgerRowsDeleted": 0, "batches": 0}
        for setting in settings:
            if setting.run_retention_days is not None:
                await self._expire_runs(setting.tenant, now - timedelta(days=setting.run_retention_days), batch_size, counts)
            ledger_days = setting.ledger_retention_days or DEFAULT_LEDGER_RETENTION_DAYS
            await self._expire_ledger(setting.tenant, now - timedelta(days=ledger_days), batch_size, counts)
        return counts

    async def _expire_runs(self, tenant: str, cutoff: datetime, batch_size: int, counts: dict[str, int]) -> None:
        ended = func.coalesce(RunRow.ended_at, RunRow.updated_at)
        after: tuple[datetime, str] | None = None
        while True:
            query = (select(ended.label("ended"), RunRow.run_id)
                     .where(RunRow.tenant == tenant, RunRow.parent_run_id.is_(None), RunRow.status.in_(TERMINAL), ended < cutoff)
                     .order_by(ended, RunRow.run_id).limit(batch_size))
            if after is not None:
                query = query.where(or_(ended > after[0], and_(ended == after[0], RunRow.run_id > after[1])))
            async with self.database.sessions() as session:
                roots = (await session.execute(query)).all()
                if not roots:
                    return
                after = (roots[-1].ended, roots[-1].run_id)
                root_ids = [r.run_id for r in roots]
                tree = (await session.execute(select(RunRow.run_id, RunRow.root_run_id, RunRow.status)
                                              .where(RunRow.tenant == tenant, or_(RunRow.run_id.in_(root_ids), RunRow.root_run_id.in_(root_ids))))).all()
            open_roots = {r.root_run_id or r.run_id for r in tree if r.status not in TERMINAL}
            counts["treesKept"] += len(open_roots & set(root_ids))
            ids = sorted({r.run_id for r in tree if (r.root_run_id or r.run_id) not in open_roots})
            if ids:
                try:
                    await self._delete_runs(tenant, ids)
                except _BatchChanged:
                    pass  # a run was resumed meanwhile: the next pass sees it as it is now
                else:
                    counts["runsDeleted"] += len(ids)
                    counts["batches"] += 1
            if len(roots) < batch_size:
                return

    async def _delete_runs(self, tenant: str, ids: list[str]) -> None:
        async with self.database.sessions.begin() as session:
            deleted = await session.execute(delete(RunRow).where(RunRow.tenant == tenant, RunRow.run_id.in_(ids), RunRow.status.in_(TERMINAL)))
            if getattr(deleted, "rowcount", 0) != len(ids):
                raise _BatchChanged
            for model in (StepRow, WaitRow, TaskRow, RunSnapshot, RunAction):
                await session.execute(delete(model).where(model.tenant == tenant, model.run_id.in_(ids)))
            await session.execute(delete(EventDelivery).where(EventDelivery.tenant == tenant, EventDelivery.run_id.in_(ids), EventDelivery.status != "PENDING"))

    async def _expire_ledger(self, tenant: str, cutoff: datetime, batch_size: int, counts: dict[str, int]) -> None:
        run_gone = ~exists().where(RunRow.run_id == ActionInvocation.run_id)
        while True:
            async with self.database.sessions.begin() as session:
                ids = list((await session.execute(select(ActionInvocation.id)
                                                  .where(ActionInvocation.tenant == tenant, ActionInvocation.created_at < cutoff, run_gone)
                                                  .order_by(ActionInvocation.id).limit(batch_size))).scalars())
                if ids:
                    await session.execute(delete(ActionInvocation).where(ActionInvocation.id.in_(ids)))
            counts["ledgerRowsDeleted"] += len(ids)
            if len(ids) < batch_size:
                return

    # -------------------------------------------------------------------------------- stuck

    async def record_diagnoses(self, *, actor: str = HOUSEKEEPING_ACTOR, page: int = 200) -> dict[str, int]:
        """Record each stuck RUNNING run's diagnosis in its history, once per reason.

        A diagnosis is written (``action="diagnosis"``, ``reason`` its code) only when it differs
        from the run's last recorded one in reason or in ``since`` (the run moved, then stuck
        again): a run stuck for a day for one reason has one row, not one per pass.

        Args:
            actor: Recorded as who wrote it.
            page: Runs examined per database read.

        Returns:
            Counts: ``checked`` (RUNNING runs), ``stuck`` (with a diagnosis), ``recorded`` (new rows).
        """
        counts = {"checked": 0, "stuck": 0, "recorded": 0}
        reasons: dict[str, int] = {}
        after = ""
        while True:
            async with self.database.sessions() as session:
                rows = list((await session.execute(select(RunRow).where(RunRow.status == "RUNNING", RunRow.run_id > after)
                                                   .order_by(RunRow.run_id).limit(page))).scalars())
            if not rows:
                metrics.set_stuck_runs(reasons)
                return counts
            after = rows[-1].run_id
            counts["checked"] += len(rows)
            found = await self.diagnoser.for_rows(rows)
            counts["stuck"] += len(found)
            for diagnosis in found.values():
                reasons[diagnosis.reason] = reasons.get(diagnosis.reason, 0) + 1
            if found:
                last = await self._last_diagnoses(list(found))
                by_id = {r.run_id: r for r in rows}
                for run_id, diagnosis in sorted(found.items()):
                    previous = last.get(run_id)
                    if previous is not None and previous == (diagnosis.reason, diagnosis.since):
                        continue
                    await self.record(by_id[run_id].tenant, run_id, "diagnosis", actor, diagnosis.reason, {"since": diagnosis.since, "detail": diagnosis.detail})
                    counts["recorded"] += 1
            if len(rows) < page:
                metrics.set_stuck_runs(reasons)
                return counts

    async def _last_diagnoses(self, run_ids: list[str]) -> dict[str, tuple[str | None, Any]]:
        latest = (select(RunAction.run_id, func.max(RunAction.id).label("id"))
                  .where(RunAction.run_id.in_(run_ids), RunAction.action == "diagnosis").group_by(RunAction.run_id).subquery())
        async with self.database.sessions() as session:
            rows = (await session.execute(select(RunAction).join(latest, RunAction.id == latest.c.id))).scalars()
            return {r.run_id: (r.reason, (r.detail or {}).get("since")) for r in rows}
