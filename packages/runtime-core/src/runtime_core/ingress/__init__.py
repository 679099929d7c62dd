"""Inbound traffic: events and human-task responses."""

from runtime_core.ingress._events import EventIngress, IngressResult
from runtime_core.ingress._tasks import TaskError, TaskResponseRejected, complete_task, register_task_definition

__all__ = ["EventIngress", "IngressResult", "TaskError", "TaskResponseRejected", "complete_task", "register_task_definition"]
