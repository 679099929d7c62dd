"""Secret references: resolved only inside activities, redacted everywhere they are stored.

A secret reference ``{"$secret": NAME}`` means something only where the *definition* wrote it
(a literal in a step's config). The interpreter tells the action activity where those places
are; data (a launch payload, an event, a task response, an action's output) that happens to
contain the same shape is data and is never resolved. A resolved value is used by the action
and nowhere else: outputs and error messages are scrubbed of it before they reach Temporal's
history, the read model or the data store.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

from runtime_core.values import json_copy

__all__ = [
    "REDACTED",
    "SECRET_NAME_PATTERN",
    "TENANT_PATTERN",
    "EnvSecretProvider",
    "SecretNotFound",
    "SecretProvider",
    "redact",
    "resolve_secrets",
    "scrub",
    "scrub_text",
]

REDACTED = "[REDACTED]"
#: Secret names: letters and digits, words separated by single underscores (``STRIPE_API_KEY``).
SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$")
#: Tenant ids that can have secrets of their own in the environment: lowercase letters and
#: digits, words separated by single hyphens (``acme-prod``).
TENANT_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class SecretNotFound(LookupError):
    """A ``{"$secret": NAME}`` the tenant's provider does not know."""


class SecretProvider(Protocol):
    """Looks up a tenant's secret by name."""

    def get(self, tenant: str, name: str) -> str:
        """Return the secret's value.

        Raises:
            SecretNotFound: No such secret for this tenant.
        """
        ...


class EnvSecretProvider:
    """Secrets from environment variables.

    ``WFR_SECRET_<TENANT>__<NAME>`` (the tenant's own) wins over ``WFR_SECRET_<NAME>`` (shared by
    every tenant). ``<TENANT>`` is the tenant id upper-cased with ``-`` as ``_`` and ``<NAME>``
    the name upper-cased. The mapping is injective: tenant ids are restricted to
    :data:`TENANT_PATTERN` and names to :data:`SECRET_NAME_PATTERN`, so neither contains ``__``,
    two tenants never share a variable and a shared name never reads a tenant's variable
    (``acme_prod``, ``ACME.PROD`` and ``acme-prod`` used to map to the same variables).
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        """Read from ``environ`` (the process environment when omitted)."""
        self._environ = environ

    @staticmethod
    def variables(tenant: str, name: str) -> list[str]:
        """The variables consulted for ``(tenant, name)``, most specific first.

        Raises:
            SecretNotFound: The name is not a valid secret name.
        """
        if not SECRET_NAME_PATTERN.match(name):
            raise SecretNotFound(f"{name!r} is not a valid secret name: use letters and digits, words separated by single underscores")
        found = [f"WFR_SECRET_{tenant.upper().replace('-', '_')}__{name.upper()}"] if TENANT_PATTERN.match(tenant) else []
        return [*found, f"WFR_SECRET_{name.upper()}"]

    def get(self, tenant: str, name: str) -> str:
        """Return the value from the environment."""
        env = os.environ if self._environ is None else self._environ
        names = self.variables(tenant, name)
        for var in names:
            if var in env:
                return env[var]
        raise SecretNotFound(f"secret {name!r} is not configured for tenant {tenant!r} (set {' or '.join(names)})")


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$secret"), str)


def resolve_secrets(value: Any, provider: SecretProvider, tenant: str, paths: list[list[Any]] | None = None) -> tuple[Any, list[str]]:
    """Replace the definition's secret references in ``value`` by their values.

    Args:
        value: An action input as the interpreter built it.
        provider: The secret provider.
        tenant: Whose secrets.
        paths: Where the definition placed references (keys and indices into ``value``); only
            those are resolved. ``None`` (requests from interpreters that predate this field)
            resolves every reference.

    Returns:
        ``(resolved copy, the secret values used)``; the latter lets callers scrub outputs.
    """
    used: list[str] = []

    def lookup(ref: dict[str, Any]) -> str:
        secret = provider.get(tenant, ref["$secret"])
        used.append(secret)
        return secret

    if paths is None:

        def walk(node: Any) -> Any:
            if _is_secret_ref(node):
                return lookup(node)
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(value), used
    if not paths:
        return value, used
    resolved = json_copy(value)
    for path in paths:
        if not path:
            if _is_secret_ref(resolved):
                resolved = lookup(resolved)
            continue
        parent = resolved
        for key in path[:-1]:
            parent = parent[key]
        if _is_secret_ref(parent[path[-1]]):
            parent[path[-1]] = lookup(parent[path[-1]])
    return resolved, used


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret reference replaced by ``"[REDACTED]"``."""
    if _is_secret_ref(value):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def scrub(value: Any, secrets: list[str]) -> Any:
    """A copy of ``value`` in which any string containing a resolved secret is redacted."""
    if not secrets:
        return value
    if isinstance(value, str):
        return REDACTED if any(s and s in value for s in secrets) else value
    if isinstance(value, dict):
        return {scrub_text(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def scrub_text(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of a resolved secret replaced by ``"[REDACTED]"`` (for messages)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
