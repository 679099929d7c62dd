"""Housekeeping: the domain worker's scheduled duties, and the data-store sweep both workers share."""

from runtime_core.housekeeping._housekeeping import DUTY_RETRY, HousekeepingActivities, HousekeepingWorkflow, sweep_expired
from runtime_core.housekeeping._schedule import ensure_housekeeping_schedule

__all__ = ["DUTY_RETRY", "HousekeepingActivities", "HousekeepingWorkflow", "ensure_housekeeping_schedule", "sweep_expired"]
