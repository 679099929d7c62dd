"""Housekeeping jobs shared by the workers."""

from runtime_core.housekeeping._housekeeping import HousekeepingActivities, HousekeepingWorkflow, sweep_expired

__all__ = ["HousekeepingActivities", "HousekeepingWorkflow", "sweep_expired"]
