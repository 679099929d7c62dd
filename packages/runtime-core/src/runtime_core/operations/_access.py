"""Who may do what: tenant-scoped tokens with roles, and the tenant's redaction rules."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from runtime_core.operations._base import MAX_BIGINT, OperationsBase, iso, storable
from runtime_core.operations._errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from runtime_core.operations._redaction import rule_problem
from runtime_core.operations._schemas import ROLES, RedactionRuleRequest, RedactionRuleView, TokenCreated, TokenView
from runtime_core.persistence import ApiToken, RedactionRule, utcnow

__all__ = ["Access", "Principal", "hash_token", "require_role"]

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Longest token name: the actor ``token:NAME`` must fit the 200 characters a run's history, a
#: task's ``completed_by`` and a rule's ``created_by`` store.
_MAX_NAME = 200 - len("token:")
#: ``last_used_at`` is written at most this often per token.
_TOUCH_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are 32 random bytes: a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant, a role, and a name for the history (``token:NAME``)."""

    tenant: str
    role: str
    actor: str


def require_role(principal: Principal, needed: str) -> None:
    """Refuse a principal whose role is below ``needed``.

    Raises:
        Forbidden: The role is too low (the message names the role needed).
    """
    if ROLES.index(principal.role) < ROLES.index(needed):
        raise Forbidden(f"this needs the {needed} role; the token's role is {principal.role}")


def _token_view(row: ApiToken) -> TokenView:
    return TokenView(id=row.id, tenant=row.tenant, name=row.name, role=row.role, prefix=row.token_prefix, createdAt=iso(row.created_at) or "",
                     lastUsedAt=iso(row.last_used_at), revokedAt=iso(row.revoked_at))


class Access(OperationsBase):
    """Token and redaction-rule operations."""

    async def create_token(self, tenant: str, role: str, name: str | None = None) -> TokenCreated:
        """A new token for ``tenant`` with ``role``; its value is returned this once and stored only hashed.

        Raises:
            Invalid: An unknown role or an unusable tenant or name.
            Conflict: The tenant already has a token with that name.
        """
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}", errors=[{"path": "role", "code": "UNKNOWN_ROLE", "message": f"one of {', '.join(ROLES)}"}])
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise Invalid("tenant must be letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)",
                          errors=[{"path": "tenant", "code": "INVALID_TENANT", "message": "letters, digits, '.', '_', '-'"}])
        token = "wfr_" + secrets.token_urlsafe(32)
        name = name or f"token-{secrets.token_hex(3)}"
        if not storable(name) or not 1 <= len(name) <= _MAX_NAME:
            raise Invalid(f"name must be 1 to {_MAX_NAME} characters without NUL", errors=[{"path": "name", "code": "INVALID_NAME", "message": f"1 to {_MAX_NAME} characters"}])
        row = ApiToken(tenant=tenant, name=name, role=role, token_hash=hash_token(token), token_prefix=token[:12], created_at=utcnow())
        try:
            async with self.database.sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise Conflict(f"tenant {tenant!r} already has a token named {name!r}; choose another name or revoke it") from None
        return TokenCreated(**_token_view(row).model_dump(), token=token)

    async def list_tokens(self, tenant: str | None = None) -> list[TokenView]:
        """Tokens (of one tenant, or all), oldest first, never their values."""
        query = select(ApiToken).order_by(ApiToken.id)
        if tenant is not None:
            query = query.where(ApiToken.tenant == tenant)
        async with self.database.sessions() as session:
            return [_token_view(r) for r in (await session.execute(query)).scalars()]

    async def revoke_token(self, name_or_id: str, tenant: str | None = None) -> TokenView:
        """Revoke a token by name (within ``tenant`` when given) or id.

        Raises:
            NotFound: No such token.
            Conflict: A name shared by tokens of several tenants (give the tenant or the id).
        """
        if not storable(name_or_id) or len(name_or_id) > 200:
            raise NotFound(f"token {str(name_or_id)[:80]!r} not found")
        query = select(ApiToken)
        by_id = name_or_id.isascii() and name_or_id.isdigit() and len(name_or_id) <= 18  # an id fits the column; "²" is no number
        query = query.where(ApiToken.id == int(name_or_id)) if by_id else query.where(ApiToken.name == name_or_id)
        if tenant is not None:
            query = query.where(ApiToken.tenant == tenant)
        async with self.database.sessions.begin() as session:
            rows = list((await session.execute(query)).scalars())
            if not rows:
                raise NotFound(f"token {name_or_id!r} not found")
            if len(rows) > 1:
                raise Conflict(f"several tenants have a token named {name_or_id!r}: give --tenant or the token's id")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        return _token_view(row)

    async def authenticate(self, token: str | None) -> Principal:
        """The principal of a bearer token.

        Raises:
            Unauthorized: No token, or an unknown or revoked one.
        """
        if not token:
            raise Unauthorized("send Authorization: Bearer <token> (create one with wfr tokens create)")
        async with self.database.sessions() as session:
            row = (await session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            raise Unauthorized("the token is unknown or revoked")
        now = utcnow()
        last = row.last_used_at
        if last is None or now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) > _TOUCH_EVERY:
            async with self.database.sessions.begin() as session:
                await session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        return Principal(tenant=row.tenant, role=row.role, actor=f"token:{row.name}")

    # -------------------------------------------------------------------------------- redaction

    async def list_redaction_rules(self, tenant: str) -> list[RedactionRuleView]:
        """The tenant's redaction rules."""
        async with self.database.sessions() as session:
            rows = (await session.execute(select(RedactionRule).where(RedactionRule.tenant == tenant).order_by(RedactionRule.id))).scalars().all()
        return [RedactionRuleView(id=r.id, kind=r.kind, pattern=r.pattern, createdAt=iso(r.created_at) or "", createdBy=r.created_by) for r in rows]

    async def add_redaction_rule(self, tenant: str, request: RedactionRuleRequest, *, actor: str | None) -> RedactionRuleView:
        """Add a rule (an existing identical rule is returned as is).

        Raises:
            Invalid: The pattern cannot be used for its kind.
        """
        problem = rule_problem(request.kind, request.pattern) if storable(request.pattern) else "the pattern must be text without NUL"
        if problem is not None:
            raise Invalid(problem, errors=[{"path": "pattern", "code": "INVALID_RULE", "message": problem}])
        try:
            async with self.database.sessions.begin() as session:
                session.add(RedactionRule(tenant=tenant, kind=request.kind, pattern=request.pattern, created_at=utcnow(), created_by=actor))
        except IntegrityError:
            pass
        async with self.database.sessions() as session:
            row = (await session.execute(select(RedactionRule).where(RedactionRule.tenant == tenant, RedactionRule.kind == request.kind,
                                                                     RedactionRule.pattern == request.pattern))).scalar_one()
        return RedactionRuleView(id=row.id, kind=row.kind, pattern=row.pattern, createdAt=iso(row.created_at) or "", createdBy=row.created_by)

    async def remove_redaction_rule(self, tenant: str, rule_id: int) -> None:
        """Remove a rule.

        Raises:
            NotFound: No such rule for this tenant.
        """
        if type(rule_id) is not int or not 0 < rule_id <= MAX_BIGINT:
            raise NotFound(f"redaction rule {rule_id} not found")
        async with self.database.sessions.begin() as session:
            result = await session.execute(delete(RedactionRule).where(RedactionRule.tenant == tenant, RedactionRule.id == rule_id))
        if getattr(result, "rowcount", 0) != 1:
            raise NotFound(f"redaction rule {rule_id} not found")
