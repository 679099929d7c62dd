"""What every Run Studio page shares: the signed-in user, CSRF, templates and their filters.

The session is the user's API token in an HttpOnly, ``SameSite=Strict`` cookie: every page
request authenticates it through the operations layer exactly as the API does a bearer token,
so a revoked token signs the page out at once and the role checks are the API's. Forms that
change something carry a CSRF token derived from the session (an HMAC of it that a page of
another origin cannot compute, since it cannot read the cookie), and a POST whose ``Origin``
is another site is refused before that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import BaseModel, ValidationError

from runtime_bootstrap._table import duration
from runtime_core.operations import ROLES, Forbidden, Invalid, Operations, Principal, Unauthorized

__all__ = [
    "COOKIE",
    "LoginRequired",
    "StudioUser",
    "User",
    "build",
    "can",
    "check_csrf",
    "csrf_token",
    "local_path",
    "operations",
    "render",
    "templates",
]

COOKIE = "wfr_session"
_M = TypeVar("_M", bound=BaseModel)
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to ``/login?next=…``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def operations(request: Request) -> Operations:
    """The app's operations (the same object the API routes use)."""
    ops: Operations | None = request.app.state.operations
    if ops is None:
        raise RuntimeError("Run Studio needs an app built with operations")
    return ops


def csrf_token(token: str) -> str:
    """The CSRF token of a session: an HMAC of the session's API token."""
    return hmac.new(token.encode(), b"wfr-studio-csrf", hashlib.sha256).hexdigest()[:40]


def local_path(value: str | None, default: str = "/runs") -> str:
    """``value`` if it is a path on this site (``/runs?x``), else ``default``: no open redirects."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return default
    return value


class User:
    """The signed-in user of a page: their principal, CSRF token and the operations."""

    def __init__(self, principal: Principal, token: str, ops: Operations) -> None:
        self.principal = principal
        self.tenant = principal.tenant
        self.role = principal.role
        self.actor = principal.actor
        self.csrf = csrf_token(token)
        self.ops = ops

    def can(self, role: str) -> bool:
        """Whether this user's role includes ``role``."""
        return can(self.role, role)


def can(role: str, needed: str) -> bool:
    """Whether ``role`` includes ``needed`` (viewer < operator < author < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


async def _user(request: Request) -> User:
    ops = operations(request)
    token = request.cookies.get(COOKIE)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise LoginRequired(here)
    try:
        principal = await ops.authenticate(token)
    except Unauthorized:
        raise LoginRequired(here) from None
    return User(principal, token, ops)


StudioUser = Annotated[User, Depends(_user)]


def check_csrf(request: Request, user: User, form: Any) -> None:
    """Refuse a state-changing form that did not come from a Studio page of this site (403)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != expected:
            raise Forbidden(f"a form from {origin} cannot change anything here")
    sent = form.get("csrf") if form is not None else None
    if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and try again")


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200, user: User | None = None) -> HTMLResponse:
    """Render a template with the user, the current path and the shared helpers."""
    return templates.TemplateResponse(request, name, {"user": user, "path": request.url.path, **context}, status_code=status_code)


def build(model: type[_M], **fields: Any) -> _M:
    """``model(**fields)``, its validation errors refused as :class:`Invalid` naming each field."""
    try:
        return model(**fields)
    except ValidationError as err:
        errors = [{"path": ".".join(str(p) for p in e["loc"]) or "form", "code": e["type"].upper(), "message": e["msg"]} for e in err.errors()]
        raise Invalid(f"{errors[0]['path']}: {errors[0]['message']}", errors=errors) from None


# --------------------------------------------------------------------------------- filters


def _instant(value: str | None) -> Markup:
    """An instant as ``<time>``: UTC as text and on hover; studio.js shows it in the viewer's zone."""
    if not value:
        return Markup('<span class="muted">—</span>')
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        text = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        text = value
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(value, text)


def _duration(ms: int | float | None) -> str:
    """Milliseconds in human units, as ``wfr`` prints them (340 ms, 12.5 s, 4 m 05 s, 2 h 03 m); ``—`` for none."""
    return "—" if ms is None else duration(max(0, int(ms)))


def _status(value: str | None) -> Markup:
    """A status as a coloured badge."""
    text = value or "UNKNOWN"
    return Markup('<span class="badge status-{0}">{1}</span>').format(text.lower().replace("_", "-"), text)


def _pretty(value: Any) -> str:
    """A JSON value, indented."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def _query(params: dict[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes`` (``None`` removes a key)."""
    merged = {**params, **changes}
    parts = []
    for key, value in merged.items():
        if value is None or value == "" or value is False:
            continue
        for item in value if isinstance(value, list) else [value]:
            parts.append(f"{quote(str(key))}={quote(str(item))}")
    return "?" + "&".join(parts) if parts else ""


templates.env.filters.update(instant=_instant, duration=_duration, status=_status, pretty=_pretty)
templates.env.globals.update(query=_query, can=can, escape=escape)
