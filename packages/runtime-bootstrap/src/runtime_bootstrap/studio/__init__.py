"""Run Studio: the web page of the runtime, served by the API's app at ``/`` (``wfr serve``, ``wfr dev``).

Server-rendered pages (Jinja2) over :mod:`runtime_core.operations`, the same layer as the API and
the CLI, with a little JavaScript (``static/studio.js``) for live updates, local times and the
JSON editor; every page is readable without it. Every asset ships in this package. One module
per area (``auth``, ``runs``, ``tasks``, ``events``, ``definitions``); ``_web`` holds the session,
CSRF and template helpers; ``_errors`` turns the operations' refusals into pages.
"""

from runtime_bootstrap.studio._install import install_studio, is_studio_path

__all__ = ["install_studio", "is_studio_path"]
