"""workflow-worker: the process that runs every authored run."""

from workflow_worker._main import main, run
from workflow_worker._version import __version__

__all__ = ["__version__", "main", "run"]
