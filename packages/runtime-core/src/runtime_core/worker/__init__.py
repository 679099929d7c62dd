"""Building the authored worker."""

from runtime_core.worker._health import HealthState, serving_health
from runtime_core.worker._ownership import AUTHORED_IDENTITY_PREFIX, ForeignPoller, check_ownership, foreign_pollers, process_identity
from runtime_core.worker._process import serve
from runtime_core.worker._worker import PASSTHROUGH_MODULES, build_authored_worker, connect_temporal, domain_workflow_runner, temporal_runtime, workflow_runner

__all__ = [
    "AUTHORED_IDENTITY_PREFIX",
    "PASSTHROUGH_MODULES",
    "ForeignPoller",
    "HealthState",
    "build_authored_worker",
    "check_ownership",
    "connect_temporal",
    "domain_workflow_runner",
    "foreign_pollers",
    "process_identity",
    "serve",
    "serving_health",
    "temporal_runtime",
    "workflow_runner",
]
