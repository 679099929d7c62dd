"""A workflow worker that stops dead right after an action's ledger row committed.

Used by test_crash.py as a separate process: it writes MARKER and then sleeps, so the test can
SIGKILL it inside the window between the database commit and Temporal recording completion.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from runtime_core.actions import ActionRegistry
from runtime_core.activities import RuntimeActivities
from runtime_core.config import RuntimeSettings
from runtime_core.contract import TASK_QUEUE, ActionRequest
from runtime_core.interpreter import InterpreterWorkflow
from runtime_core.persistence import Database
from runtime_core.worker import connect_temporal, workflow_runner


async def main(marker: Path) -> None:
    settings = RuntimeSettings.from_env()
    database = Database(settings.database_url)
    client = await connect_temporal(settings)

    async def hang(req: ActionRequest) -> None:
        marker.write_text(req.idempotency_key)
        await asyncio.sleep(3600)

    from temporalio.worker import Worker

    activities = RuntimeActivities(database, ActionRegistry.default(), on_committed=hang)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[InterpreterWorkflow], activities=activities.all(), workflow_runner=workflow_runner()):
        print("crash worker polling", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
