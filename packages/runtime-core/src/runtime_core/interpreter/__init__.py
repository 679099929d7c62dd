"""The interpreter workflow (deterministic; never imports the database layer)."""

from runtime_core.interpreter._workflow import InterpreterWorkflow

__all__ = ["InterpreterWorkflow"]
