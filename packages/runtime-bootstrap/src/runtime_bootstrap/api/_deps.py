"""Cross-cutting concerns as FastAPI dependencies: the operations, the caller and its role.

A route declares who may call it by the type of its principal parameter (``Viewer``,
``Operator``, ``Author``, ``Admin``): the dependency authenticates the bearer token (401),
checks the role (403), refuses unknown query parameters and text the runtime cannot store (422,
see ``_guard``) and hands the
route the :class:`Principal` whose ``tenant`` every operation takes. A route cannot run without
one, so it cannot forget the tenant.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from runtime_bootstrap.api._guard import check_query_names, check_request_text
from runtime_core.operations import ROLES, Operations, Principal, require_role

__all__ = ["Admin", "Author", "Operator", "Ops", "Viewer", "get_operations", "requires"]

_bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth", description="A token from `wfr tokens create --tenant T --role ROLE`.")


def get_operations(request: Request) -> Operations:
    """The app's operations object (503 for an app built only to describe itself)."""
    operations: Operations | None = request.app.state.operations
    if operations is None:
        raise HTTPException(503, "this app was built without a database or Temporal")
    return operations


Ops = Annotated[Operations, Depends(get_operations)]


async def _principal(request: Request, ops: Ops, scopes: SecurityScopes,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    found = await ops.authenticate(credentials.credentials if credentials is not None else None)
    for role in scopes.scopes:
        require_role(found, role)
    check_query_names(request)
    await check_request_text(request)
    return found


def requires(role: str) -> Any:
    """The caller's principal, refusing an unknown token (401) or a role below ``role`` (403).

    The role is the security requirement's scope, so the OpenAPI document states it
    (``security: [{"bearerAuth": ["operator"]}]``: OpenAPI 3.1 lets a non-OAuth scheme list the
    role names it requires).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return Security(_principal, scopes=[role])


Viewer = Annotated[Principal, requires("viewer")]
Operator = Annotated[Principal, requires("operator")]
Author = Annotated[Principal, requires("author")]
Admin = Annotated[Principal, requires("admin")]
