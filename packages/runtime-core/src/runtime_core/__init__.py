"""runtime-core: the worker-safe library of the authored-workflow runtime.

Import the sub-packages you need (``runtime_core.dsl``, ``runtime_core.launcher`` …); this
package itself stays light so that workflow sandboxes importing it pull in nothing else.
"""

from runtime_core._version import __version__

__all__ = ["__version__"]
