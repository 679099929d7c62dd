"""Error pages: a refusal of the operations layer on a Studio page is a page, not a problem document.

The API's handlers (``runtime_bootstrap.api._problems``) ask :func:`studio_error_page` first
for a Studio path; a missing session is a redirect to the login page.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from runtime_bootstrap.studio._web import LoginRequired, render

__all__ = ["install_error_pages", "studio_error_page"]

_TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
           409: "Cannot do that now", 422: "Invalid input", 500: "Unexpected error", 503: "Unavailable"}


def studio_error_page(request: Request, status: int, detail: str, errors: list[dict[str, object]] | None = None) -> Response:
    """An error page for a Studio path, with the reason (and each problem of invalid input)."""
    return render(request, "error.html", {"status": status, "title": _TITLES.get(status, "Error"), "detail": detail, "errors": errors or []},
                  status_code=status)


def install_error_pages(app: FastAPI) -> None:
    """A missing or revoked session sends the browser to ``/login?next=<the page>``."""

    async def login_required(request: Request, err: Exception) -> Response:
        assert isinstance(err, LoginRequired)
        return RedirectResponse(f"/login?next={quote(err.next_path, safe='/')}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
