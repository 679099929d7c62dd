"""Activities of the interpreter workflow."""

from runtime_core.activities._activities import RuntimeActivities, action_error, event_signal, infrastructure_error, is_database_unavailable
from runtime_core.activities._projections import apply_projections

__all__ = ["RuntimeActivities", "action_error", "apply_projections", "event_signal", "infrastructure_error", "is_database_unavailable"]
