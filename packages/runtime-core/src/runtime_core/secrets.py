"""Secret references: resolved only inside activities, redacted everywhere they are stored."""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

__all__ = ["REDACTED", "EnvSecretProvider", "SecretNotFound", "SecretProvider", "redact", "resolve_secrets", "scrub"]

REDACTED = "[REDACTED]"


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

    ``WFR_SECRET_<TENANT>__<NAME>`` wins over ``WFR_SECRET_<NAME>``; names are upper-cased and
    non-alphanumerics become ``_``.
    """

    def get(self, tenant: str, name: str) -> str:
        """Return the value from the environment."""

        def norm(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9]", "_", text).upper()

        for var in (f"WFR_SECRET_{norm(tenant)}__{norm(name)}", f"WFR_SECRET_{norm(name)}"):
            if var in os.environ:
                return os.environ[var]
        raise SecretNotFound(f"secret {name!r} is not configured for tenant {tenant!r} (set WFR_SECRET_{norm(name)})")


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$secret"), str)


def resolve_secrets(value: Any, provider: SecretProvider, tenant: str) -> tuple[Any, list[str]]:
    """Replace every secret reference by its value.

    Returns:
        ``(resolved value, the secret values used)`` — the latter lets callers scrub outputs.
    """
    used: list[str] = []

    def walk(node: Any) -> Any:
        if _is_secret_ref(node):
            secret = provider.get(tenant, node["$secret"])
            used.append(secret)
            return secret
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value), used


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
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value
