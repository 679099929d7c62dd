"""What every authenticated request is checked for before its route runs.

Unknown query parameters are refused (422), as unknown body fields are: a misspelled filter
(``?statuss=FAILED``) must not silently list, or bulk-cancel, everything.

Text the runtime cannot store is refused at the door, wherever it is in a request.

PostgreSQL refuses the NUL character in text and JSON, and no database can store a lone
surrogate: a request carrying either in a path segment, a query parameter or anywhere in its JSON
body (a ``reason``, an id, a key) would otherwise fail inside the database. It is answered 422
with the offending place instead, on SQLite and PostgreSQL alike. Non-finite numbers and integers
beyond 64 bits are refused the same way (:func:`runtime_core.values.node_problem`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from runtime_core.operations import Invalid
from runtime_core.values import MAX_DEPTH, node_problem

__all__ = ["check_query_names", "check_request_text"]

#: A body is the request's own object around the values the runtime limits (a payload, a definition).
_BODY_DEPTH = MAX_DEPTH + 8


def _problem(path: str, code: str, message: str) -> Invalid:
    return Invalid(f"{path}: {message}", errors=[{"path": path, "code": code, "message": message}])


def _check_parameter(name: str, value: str) -> None:
    problem = node_problem(value, name)
    if problem is not None:
        raise _problem(name, problem.code, problem.reason)


def _check_body(body: Any) -> None:
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        where = path or "body"
        if depth > _BODY_DEPTH:
            raise _problem(where, "TOO_DEEP", f"nests deeper than {MAX_DEPTH} levels; flatten the data")
        problem = node_problem(node, where)
        if problem is not None:
            raise _problem(where, problem.code, problem.reason)
        if isinstance(node, dict):
            stack.extend((item, f"{path}.{key}" if path else str(key), depth + 1) for key, item in node.items())
        elif isinstance(node, list):
            stack.extend((item, f"{path}.{index}" if path else str(index), depth + 1) for index, item in enumerate(node))


def _query_names(app: Any) -> dict[str, dict[str, bool]]:
    """Each operation's query parameters (name → whether it takes a list), by operation id (from the app's OpenAPI document)."""
    names: dict[str, dict[str, bool]] | None = getattr(app.state, "query_names", None)
    if names is None:
        names = {}
        for item in app.openapi()["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    names[operation["operationId"]] = {p["name"]: _repeatable(p.get("schema", {})) for p in operation.get("parameters", []) if p.get("in") == "query"}
        app.state.query_names = names
    return names


def check_query_names(request: Request) -> None:
    """Refuse query parameters the route does not declare, and a one-value parameter given twice.

    Raises:
        Invalid: Every unknown parameter, each named.
    """
    from runtime_bootstrap.api._openapi import operation_id

    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    known = _query_names(request.app).get(operation_id(route))
    if known is None:
        return
    unknown = sorted(set(request.query_params) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise Invalid(f"unknown query parameter {unknown[0]!r}; this route takes: {allowed}",
                      errors=[{"path": name, "code": "UNKNOWN_PARAMETER", "message": f"not a parameter of this route (it takes: {allowed})"} for name in unknown])
    repeated = sorted(name for name in set(request.query_params) if not known[name] and len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise Invalid(f"query parameter {repeated[0]!r} is given more than once; give it once",
                      errors=[{"path": name, "code": "REPEATED_PARAMETER", "message": "takes one value"} for name in repeated])


def _repeatable(schema: dict[str, Any]) -> bool:
    """Whether a query parameter's schema takes a list (``?status=A&status=B``)."""
    kinds = [schema, *schema.get("anyOf", [])]
    return any(kind.get("type") == "array" for kind in kinds if isinstance(kind, dict))


async def check_request_text(request: Request) -> None:
    """Refuse a request whose path parameters, query parameters or JSON body the runtime cannot store.

    Raises:
        Invalid: The first such place, by name or dotted body path.
    """
    for name, value in request.path_params.items():
        if isinstance(value, str):
            _check_parameter(name, value)
    for name, value in request.query_params.multi_items():
        _check_parameter(name, value)
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", "json"):
        try:
            body = await request.json() if await request.body() else None
        except (ValueError, RecursionError):  # FastAPI reports a body that does not parse
            return
        _check_body(body)
