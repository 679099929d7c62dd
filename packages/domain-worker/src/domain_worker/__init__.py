"""domain-worker: polls the non-authored domain queues only."""

from domain_worker._main import RefusedQueue, check_queue, main, run
from domain_worker._version import __version__

__all__ = ["RefusedQueue", "__version__", "check_queue", "main", "run"]
