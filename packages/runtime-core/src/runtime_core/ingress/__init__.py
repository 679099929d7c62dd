"""Inbound traffic: events and human-task responses."""

from runtime_core.ingress._events import EventIngress, IngressError, IngressResult
from runtime_core.ingress._tasks import TaskError, TaskResponseRejected, complete_task, register_task_definition

__all__ = ["EventIngress", "IngressError", "IngressResult", "TaskError", "TaskResponseRejected", "complete_task", "register_task_definition"]
