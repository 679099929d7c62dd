"""Errors as one shape: ``application/problem+json`` (RFC 9457), from one set of exception handlers.

Routes never build an error body: they let the operation raise its :class:`OperationError`, and
the handlers here turn it (and request validation errors, unknown routes, an unavailable database
or Temporal, and anything unexpected) into a problem document.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from runtime_bootstrap.studio import is_studio_path
from runtime_bootstrap.studio._errors import studio_error_page
from runtime_core.operations import OperationError
from runtime_core.values import safe_text

__all__ = ["PROBLEM_JSON", "ProblemDetails", "ProblemItem", "install_problem_handlers", "problem_response"]

log = logging.getLogger("runtime_bootstrap.api")

PROBLEM_JSON = "application/problem+json"

#: ``type`` of each problem: a URN per kind (nothing to dereference; docs/api.md lists them).
_TYPES = {
    400: "urn:wfr:problem:bad-request",
    401: "urn:wfr:problem:unauthorized",
    403: "urn:wfr:problem:forbidden",
    404: "urn:wfr:problem:not-found",
    405: "urn:wfr:problem:method-not-allowed",
    409: "urn:wfr:problem:conflict",
    422: "urn:wfr:problem:invalid-input",
    500: "urn:wfr:problem:internal-error",
    503: "urn:wfr:problem:unavailable",
}
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid input",
    500: "Internal error",
    503: "Service unavailable",
}


class ProblemItem(BaseModel):
    """One problem of an invalid request."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Where: a dotted path into the JSON body (`payload.card.number`), or a parameter's name (`limit`).")
    code: str = Field(description="Machine-readable code (`SCHEMA`, `MISSING`, `UNKNOWN_STATUS`, …).")
    message: str


class ProblemDetails(BaseModel):
    """An error (RFC 9457 problem details), served as `application/problem+json`."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="A URN naming the kind of problem (`urn:wfr:problem:not-found`).")
    title: str
    status: int
    detail: str = Field(description="What is wrong and what to do, in one sentence.")
    instance: str | None = Field(default=None, description="The path of the request.")
    errors: list[ProblemItem] = Field(default_factory=list, description="Every problem of an invalid request (empty otherwise).")


def problem_response(status: int, detail: str, *, errors: list[dict[str, Any]] | None = None, title: str | None = None,
                     instance: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem+json response."""
    body = ProblemDetails(
        type=_TYPES.get(status, "about:blank"), title=title or _TITLES.get(status, "Error"), status=status, detail=safe_text(detail),
        instance=instance, errors=[ProblemItem(path=safe_text(str(e.get("path", "")), 500), code=str(e.get("code", "INVALID")),
                                               message=safe_text(str(e.get("message", "")), 2000)) for e in errors or []],
    )
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_items(err: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors as ``{path, code, message}``: body paths dotted, parameters by name."""
    items = []
    for error in err.errors():
        loc = [str(part) for part in error.get("loc", ())]
        kind = str(error.get("type", "invalid"))
        if loc and loc[0] == "body":
            rest = loc[1:] if kind != "json_invalid" else []
            path = ".".join(rest) or "body"
        else:
            path = ".".join(loc[1:]) or (loc[0] if loc else "request")
        message = str(error.get("msg", "invalid"))
        if kind == "json_invalid" and isinstance(error.get("ctx"), dict):
            message = f"the body is not JSON: {error['ctx'].get('error')}"
        items.append({"path": path, "code": kind.upper(), "message": message})
    return items


def _respond(request: Request, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None, title: str | None = None,
             instance: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A problem document for the API; the same refusal as an HTML page on a Run Studio path."""
    if is_studio_path(request.url.path):
        if status == 404 and detail.startswith("there is no route"):
            detail = f"there is no page {request.url.path}"
        return studio_error_page(request, status, detail, errors)
    return problem_response(status, detail, errors=errors, title=title, instance=instance, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app can meet answers a problem document."""

    async def operation_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, OperationError)
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return _respond(request, err.status, err.detail, errors=err.errors, title=err.title, instance=request.url.path, headers=headers)

    async def invalid_request(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        items = _validation_items(err)
        first = items[0] if items else {"path": "request", "message": "invalid"}
        more = f" (and {len(items) - 1} more problem(s), listed in errors)" if len(items) > 1 else ""
        return _respond(request, 422, f"the request is invalid: {first['path']}: {first['message']}{more}", errors=items, instance=request.url.path)

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        detail = err.detail if isinstance(err.detail, str) else _TITLES.get(err.status_code, "error")
        if err.status_code == 400:  # FastAPI could not read the body (a number of thousands of digits, extreme nesting)
            message = "the body could not be read as JSON the runtime accepts (numbers of thousands of digits or extreme nesting)"
            return _respond(request, 422, message, errors=[{"path": "body", "code": "UNREADABLE_BODY", "message": message}], instance=request.url.path)
        if err.status_code == 404 and detail == "Not Found":
            detail = f"there is no route {request.url.path}; see /api/v1/openapi.json"
        elif err.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return _respond(request, err.status_code, detail, instance=request.url.path, headers=dict(err.headers) if err.headers else None)

    async def temporal_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, RPCError)
        log.warning("%s %s: Temporal answered %s: %s", request.method, request.url.path, err.status.name, err.message)
        return _respond(request, 503, f"Temporal could not do it now ({err.status.name}: {safe_text(err.message, 300)}); try again", instance=request.url.path)

    async def database_error(request: Request, err: Exception) -> Response:
        # never the SQL text or its parameters: they may hold data or secrets
        inner = getattr(err, "orig", None) or err
        log.warning("%s %s: database unavailable (%s)", request.method, request.url.path, type(inner).__name__)
        return _respond(request, 503, f"the database is unavailable ({type(inner).__name__}); try again", instance=request.url.path)

    async def unexpected(request: Request, err: Exception) -> Response:
        log.error("%s %s failed unexpectedly", request.method, request.url.path, exc_info=err)
        return _respond(request, 500, "an unexpected error; it was logged", instance=request.url.path)

    app.add_exception_handler(OperationError, operation_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RPCError, temporal_error)
    for kind in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError, ConnectionError):
        app.add_exception_handler(kind, database_error)
    app.add_exception_handler(Exception, unexpected)
