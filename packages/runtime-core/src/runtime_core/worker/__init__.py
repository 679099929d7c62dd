"""Building the authored worker."""

from runtime_core.worker._process import serve
from runtime_core.worker._worker import PASSTHROUGH_MODULES, build_authored_worker, connect_temporal, domain_workflow_runner, temporal_runtime, workflow_runner

__all__ = ["PASSTHROUGH_MODULES", "build_authored_worker", "connect_temporal", "domain_workflow_runner", "serve", "temporal_runtime", "workflow_runner"]
