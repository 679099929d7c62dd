"""Run Studio: the definitions pages (``/definitions``, ``/definitions/{workflowId}``) and the validate/publish editor.

The editor lives on ``/definitions`` (``#editor``; ``/definitions?from=<workflowId>&version=N#editor``
starts from a published version). Its two buttons post the same form to ``/definitions/validate``
(:meth:`Operations.validate_definitions`, nothing stored) and ``/definitions/publish``
(:meth:`Operations.publish`, all or nothing); both need the author role, as in the API, and the
answer is the same page with the user's text kept and every problem in a table.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runtime_bootstrap.studio._web import StudioUser, User, build, check_csrf, render
from runtime_core.operations import DefinitionsRequest, Invalid, NotFound, require_role

__all__ = ["router"]

router = APIRouter()

_EXAMPLE = {"id": "hello", "version": 1, "name": "Hello", "description": "Says hello.",
            "steps": [{"id": "say", "type": "action.call", "config": {"actionId": "core.echo", "version": 1,
                                                                      "inputMapping": {"n": 1}, "saveAs": "vars.said"}}]}


def _documents(text: str) -> list[Any]:
    """The editor's text as a batch: one definition object or a list of them.

    Raises:
        Invalid: The text is not JSON (line and column named) or neither an object nor a list.
    """
    try:
        value = json.loads(text)
    except ValueError as err:
        line, column = getattr(err, "lineno", 1), getattr(err, "colno", 1)
        reason = getattr(err, "msg", str(err))
        message = f"not JSON at line {line}, column {column}: {reason}"
        raise Invalid(f"The text is {message}.", errors=[{"path": f"line {line}, column {column}", "code": "INVALID_JSON", "message": reason}]) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise Invalid("Write one definition (a JSON object) or a non-empty list of them.",
                      errors=[{"path": "root", "code": "NOT_A_DEFINITION", "message": "a JSON object or a non-empty JSON array of objects"}])
    return build(DefinitionsRequest, definitions=value).definitions


async def _list_page(request: Request, user: User, *, text: str, result: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    definitions = await user.ops.list_definitions(user.tenant)
    return render(request, "definitions.html", {"definitions": definitions, "text": text, "result": result}, status_code=status_code, user=user)


@router.get("/definitions")
async def definition_list(request: Request, user: StudioUser) -> Response:
    """The tenant's workflows with their latest version; the editor for authors (``?from=ID&version=N`` fills it)."""
    text = json.dumps(_EXAMPLE, indent=2)
    source = request.query_params.get("from")
    if source and user.can("author"):
        version = _version(request.query_params.get("version"))
        if version is None:
            version = (await user.ops.list_versions(user.tenant, source))[0].version
        detail = await user.ops.get_version(user.tenant, source, version)
        text = json.dumps(detail.definition, indent=2, ensure_ascii=False)
    return await _list_page(request, user, text=text)


async def _editor_post(request: Request, user: User, action: str) -> Response:
    form = await request.form()
    check_csrf(request, user, form)
    require_role(user.principal, "author")
    text = str(form.get("definitions") or "")
    try:
        documents = _documents(text)
        if action == "validate":
            outcome = await user.ops.validate_definitions(user.tenant, documents)
            result = {"action": action, "ok": outcome.valid, "problems": outcome.problems, "published": []}
        else:
            published = await user.ops.publish(user.tenant, documents)
            result = {"action": action, "ok": True, "problems": published.problems, "published": published.published}
    except Invalid as err:
        result = {"action": action, "ok": False, "detail": err.detail, "problems": err.errors, "published": []}
        return await _list_page(request, user, text=text, result=result, status_code=422)
    return await _list_page(request, user, text=text, result=result)


@router.post("/definitions/validate")
async def validate(request: Request, user: StudioUser) -> Response:
    """Validate the editor's definitions as publishing would; show every problem; store nothing (author role)."""
    return await _editor_post(request, user, "validate")


@router.post("/definitions/publish")
async def publish(request: Request, user: StudioUser) -> Response:
    """Publish the editor's definitions, all or nothing; show what was published or every problem (author role)."""
    return await _editor_post(request, user, "publish")


def _version(value: str | None) -> int | None:
    """``?version=N`` as an int (``None`` when absent).

    Raises:
        NotFound: Not a whole number: no such version.
    """
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise NotFound(f"version {value[:20]!r} not found")
    return int(value)


@router.get("/definitions/{workflowId}")
async def definition_page(request: Request, workflowId: str, user: StudioUser) -> Response:
    """A workflow's versions and one version's definition (``?version=N``, default the latest); 404 for another tenant's."""
    versions = await user.ops.list_versions(user.tenant, workflowId)
    selected = _version(request.query_params.get("version"))
    detail = await user.ops.get_version(user.tenant, workflowId, versions[0].version if selected is None else selected)
    return render(request, "definition.html", {"versions": versions, "detail": detail, "latest": versions[0].version}, user=user)
