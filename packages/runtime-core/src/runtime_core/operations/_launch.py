"""Launching a run through the operations layer (with an idempotency key)."""

from __future__ import annotations

from runtime_core.launcher import LaunchConflict, LaunchError
from runtime_core.operations._errors import Conflict, Invalid
from runtime_core.operations._runs import RunReads, summary
from runtime_core.operations._schemas import LaunchRequest, RunSummary

__all__ = ["Launching"]


class Launching(RunReads):
    """The launch operation."""

    async def launch_run(self, tenant: str, request: LaunchRequest, *, idempotency_key: str | None = None) -> tuple[RunSummary, bool]:
        """Start a run; with ``idempotency_key`` the same key and body give the same run.

        Returns:
            ``(run, created)``: ``created`` is false when the key found an earlier launch.

        Raises:
            Invalid: Not published, or the payload does not fit its schema (every problem listed).
            Conflict: The key was used for a different launch.
        """
        try:
            launched = await self.launcher.launch(tenant, request.workflowId, request.payload, version=request.version, idempotency_key=idempotency_key,
                                                  trigger={"type": "api"})
        except LaunchConflict as err:
            raise Conflict(str(err)) from None
        except LaunchError as err:
            errors = [{"path": p.get("path", "payload"), "code": "SCHEMA", "message": p.get("message", "")} for p in err.problems]
            if not errors:
                field = "version" if "version" in str(err) and request.version is not None else "workflowId"
                errors = [{"path": field, "code": "NOT_LAUNCHABLE", "message": str(err)}]
            raise Invalid(str(err), errors=errors) from None
        return summary(await self.run_row(tenant, launched.run_id)), launched.created
