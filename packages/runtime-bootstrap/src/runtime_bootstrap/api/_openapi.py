"""The OpenAPI document, generated from the routes and the operations' models, then completed.

FastAPI generates paths and schemas from the routes; this adds what is the same everywhere so no
route repeats it: each operation's role (``x-wfr-role``, read from its security requirement), the
401/403/404/503 answers that authentication, roles, path ids and the dependencies produce, and
``application/problem+json`` (the :class:`ProblemDetails` schema) as the content of every error
answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from runtime_bootstrap.api._problems import PROBLEM_JSON, ProblemDetails

__all__ = ["METHODS", "build_openapi", "operation_id", "operation_role"]

METHODS = ("get", "post", "put", "patch", "delete")

_DESCRIPTIONS = {
    400: "The request could not be read.",
    401: "No token, or an unknown or revoked one.",
    403: "The token's role is too low for this operation.",
    404: "No such resource for this tenant (another tenant's resource answers the same).",
    409: "Conflict with the resource's state.",
    422: "Invalid input: `errors` lists every problem.",
    503: "The database or Temporal is unavailable; try again.",
}


def operation_id(route: APIRoute) -> str:
    """``list_runs`` → ``listRuns``."""
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def operation_role(operation: dict[str, Any]) -> str | None:
    """The role an operation of the document requires (``None``: no authentication)."""
    for requirement in operation.get("security", []):
        for roles in requirement.values():
            if roles:
                return str(roles[0])
    return None


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI 3.1 document (cached on the app)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version, description=app.description,
                           routes=app.routes, tags=app.openapi_tags)
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemDetails"] = problem
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            description = str(operation.get("description", "")).strip()
            if description:
                operation["summary"] = description.splitlines()[0]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            role = operation_role(operation)
            if role is not None:
                operation["x-wfr-role"] = role
                operation["description"] = f"{description}\n\nRole: `{role}` or higher."
                responses.setdefault("401", {})
                if role != "viewer":
                    responses.setdefault("403", {})
                responses.setdefault("503", {})
            if "{" in path:
                responses.setdefault("404", {})
            for code, answer in responses.items():
                if int(code) >= 400:
                    if not answer.get("description") or answer["description"] == "Validation Error":
                        answer["description"] = _DESCRIPTIONS.get(int(code), "Error.")
                    answer["content"] = problem_content
            operation["responses"] = dict(sorted(responses.items()))
    used = str(document["paths"]) + str({k: v for k, v in schemas.items() if k not in ("HTTPValidationError", "ValidationError")})
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"/{name}'" not in used:
            del schemas[name]
    app.openapi_schema = document
    return document
