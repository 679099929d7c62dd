"""The authored worker process: polls workflow-runtime-v2, sweeps the data store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from runtime_core.actions import ActionRegistry
from runtime_core.config import ConfigError, RuntimeSettings
from runtime_core.contract import TASK_QUEUE
from runtime_core.housekeeping import sweep_expired
from runtime_core.persistence import Database, current_revision, head_revision
from runtime_core.worker import build_authored_worker, connect_temporal

__all__ = ["main", "run"]

log = logging.getLogger("workflow_worker")


async def _sweep_forever(database: Database, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await sweep_expired(database)
            if removed:
                log.info("data-store sweep removed %d expired keys", removed)
        except Exception:  # keep sweeping; a failed pass is retried next interval
            log.exception("data-store sweep failed")


async def run(settings: RuntimeSettings, stop: asyncio.Event | None = None) -> None:
    """Run the worker until ``stop`` is set (or SIGTERM/SIGINT when run by :func:`main`).

    Raises:
        RuntimeError: Temporal is unreachable or the database is not migrated.
    """
    stop = stop or asyncio.Event()
    database = Database(settings.database_url)
    try:
        revision = await current_revision(database)
        if revision != head_revision():
            raise RuntimeError(f"database {database.safe_url} is at revision {revision or 'empty'}, this worker needs {head_revision()}: run `wfr db upgrade`")
        client = await connect_temporal(settings)
        registry = ActionRegistry.default()
        worker = build_authored_worker(client, database, registry)
        sweeper = asyncio.create_task(_sweep_forever(database, settings.sweep_interval_seconds))
        log.info(
            "polling task queue %s on %s (namespace %s); database %s; %d actions registered",
            TASK_QUEUE, settings.temporal_address, settings.temporal_namespace, database.safe_url, len(registry.specs()),
        )
        try:
            async with worker:
                await stop.wait()
                log.info("stopping: finishing in-flight tasks")
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        log.info("stopped")
    finally:
        await database.dispose()


def main() -> None:
    """Console-script entry point: configure from ``WFR_*`` variables and run until SIGTERM."""
    try:
        settings = RuntimeSettings.from_env()
    except ConfigError as err:
        print(f"workflow-worker: {err}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        asyncio.run(go())
    except RuntimeError as err:
        print(f"workflow-worker: {err}", file=sys.stderr)
        sys.exit(1)
