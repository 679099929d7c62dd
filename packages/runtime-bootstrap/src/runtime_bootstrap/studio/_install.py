"""Mount Run Studio on an app: its routers, its static assets and its error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from runtime_bootstrap.studio import auth, definitions, events, run_page, runs, tasks
from runtime_bootstrap.studio._errors import install_error_pages

__all__ = ["install_studio", "is_studio_path"]

_NOT_STUDIO = ("/api/", "/healthz", "/readyz")


def is_studio_path(path: str) -> bool:
    """Whether ``path`` is a Studio page (answered with HTML), not the API or a health check."""
    return not (path == "/api" or path.startswith(_NOT_STUDIO))


def install_studio(app: FastAPI) -> None:
    """Add Run Studio's pages (at ``/``) and assets (``/static``) to ``app``; none is in the OpenAPI document."""
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="studio-static")
    for module in (auth, runs, run_page, tasks, events, definitions):
        app.include_router(module.router, include_in_schema=False)
    install_error_pages(app)
