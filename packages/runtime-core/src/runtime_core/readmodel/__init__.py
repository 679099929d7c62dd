"""Read-model queries over the projections."""

from runtime_core.readmodel._views import TERMINAL_STATUSES, run_view

__all__ = ["TERMINAL_STATUSES", "run_view"]
