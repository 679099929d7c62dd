"""runtime-bootstrap: application wiring (settings, CLI, embedded dev stack, scenarios)."""

from runtime_bootstrap._version import __version__

__all__ = ["__version__"]
