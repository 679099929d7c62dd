"""Signing in and out of Run Studio with an API token (``/login``, ``/logout``), and ``/``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from runtime_bootstrap.studio._web import COOKIE, StudioUser, check_csrf, local_path, operations, render
from runtime_core.operations import Unauthorized

__all__ = ["router"]

router = APIRouter()

#: A session lasts as long as its browser keeps it, at most this long; the token's own revocation ends it at once.
_MAX_AGE = 12 * 3600


@router.get("/")
async def home() -> Response:
    """The run list is the home page."""
    return RedirectResponse("/runs", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form: one field, ``token`` (create one with ``wfr tokens create``)."""
    return render(request, "login.html", {"next": local_path(next), "error": None})


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form(max_length=512)] = "", next: Annotated[str, Form(max_length=2000)] = "/runs") -> Response:
    """Check the token and keep it in an HttpOnly, SameSite=Strict session cookie."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        return render(request, "login.html", {"next": "/runs", "error": "sign in from this site's own page"}, status_code=403)
    try:
        await operations(request).authenticate(token.strip() or None)
    except Unauthorized:
        return render(request, "login.html", {"next": local_path(next), "error": "That token is unknown or revoked. Create one with: wfr tokens create --tenant T --role viewer"},
                      status_code=401)
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(COOKIE, token.strip(), max_age=_MAX_AGE, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
async def logout(request: Request, user: StudioUser) -> Response:
    """End the session (the token itself stays valid: revoke it with ``wfr tokens revoke``)."""
    check_csrf(request, user, await request.form())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
