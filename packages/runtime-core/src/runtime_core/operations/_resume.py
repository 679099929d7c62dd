"""Resume: a FAILED run continues from the step that failed it, as the same run (Temporal reset)."""

from __future__ import annotations

from runtime_core.operations._errors import Conflict
from runtime_core.operations._runs import RunReads
from runtime_core.operations._schemas import RunSummary

__all__ = ["Resuming"]


class Resuming(RunReads):
    """The resume operation."""

    async def resume_run(self, tenant: str, run_id: str, *, actor: str | None, reason: str | None) -> RunSummary:
        """Continue a FAILED run from the step that failed it.

        Raises:
            NotFound: No such run.
            Conflict: The run is not FAILED, or its failure cannot be resumed (the message says why).
        """
        await self.run_row(tenant, run_id)
        raise Conflict("resume is being implemented")
