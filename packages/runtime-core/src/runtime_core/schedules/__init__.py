"""Schedule and recurring triggers on Temporal Schedules: may touch the database (reading published definitions) and Temporal (schedules, the fire's launch); the fire workflow itself (``_workflow``) is deterministic and touches neither."""

from runtime_core.schedules._fire import ScheduledLaunchActivities, launch_fire
from runtime_core.schedules._ids import launch_key, parse_schedule_id, schedule_id, trigger_key
from runtime_core.schedules._reconcile import DesiredSchedule, ReconcileReport, desired_schedule, reconcile_schedules
from runtime_core.schedules._workflow import ScheduledLaunchWorkflow, format_scheduled_time

__all__ = [
    "DesiredSchedule",
    "ReconcileReport",
    "ScheduledLaunchActivities",
    "ScheduledLaunchWorkflow",
    "desired_schedule",
    "format_scheduled_time",
    "launch_fire",
    "launch_key",
    "parse_schedule_id",
    "reconcile_schedules",
    "schedule_id",
    "trigger_key",
]

