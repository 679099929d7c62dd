"""``wfr definitions list|show``, ``wfr tokens create|list|revoke``, ``wfr redaction list|add|remove``, ``wfr tenants show|set-retention``: the database alone."""

from __future__ import annotations

import json
from typing import Any

import click

from runtime_bootstrap._cli_kit import actor_of, actor_option, call, check_texts, echo_json, json_option, request, tenant_option
from runtime_bootstrap._table import cell, instant, table
from runtime_bootstrap.cli import wfr
from runtime_core.dsl import MAX_VERSION
from runtime_core.operations import (
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    ROLES,
    Operations,
    RedactionRuleRequest,
    RetentionSettings,
    TokenView,
    VersionDetail,
    VersionSummary,
)

__all__ = ["definitions", "redaction", "tenants", "tokens"]


# ------------------------------------------------------------------------------ definitions


@wfr.group()
def definitions() -> None:
    """Published workflow definitions (publish with `wfr publish`)."""


@definitions.command("list")
@tenant_option
@json_option
def definitions_list(tenant: str, as_json: bool) -> None:
    """The tenant's workflows with their latest version."""
    check_texts((tenant, "--tenant"))
    found = call("database", lambda ops: ops.list_definitions(tenant))
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no workflows published")
        return
    rows = [[d.workflowId, d.name, d.latestVersion, instant(d.updatedAt), d.description] for d in found]
    for line in table(["WORKFLOW", "NAME", "LATEST", "UPDATED", "DESCRIPTION"], rows, right=[2]):
        click.echo(line)


@definitions.command("show")
@click.argument("workflow_id")
@click.option("--version", type=click.IntRange(1, MAX_VERSION), default=None, help="This published version (default: the latest).")
@tenant_option
@json_option
def definitions_show(workflow_id: str, version: int | None, tenant: str, as_json: bool) -> None:
    """A published version's definition (the latest by default), after the list of every version."""
    check_texts((workflow_id, "WORKFLOW_ID"), (tenant, "--tenant"))

    async def read(ops: Operations) -> tuple[list[VersionSummary], VersionDetail]:
        versions = await ops.list_versions(tenant, workflow_id)
        return versions, await ops.get_version(tenant, workflow_id, version if version is not None else versions[0].version)

    versions, detail = call("database", read)
    if as_json:
        echo_json(detail)
        return
    rows = [[v.version, v.hash[:12], instant(v.publishedAt), v.trigger] for v in versions]
    for line in table(["VERSION", "HASH", "PUBLISHED", "TRIGGER"], rows, right=[0]):
        click.echo(line)
    click.echo(f"\n{cell(detail.workflowId)} v{detail.version} ({detail.hash[:12]}, published {instant(detail.publishedAt)}):")
    click.echo(json.dumps(detail.definition, indent=2))


# ----------------------------------------------------------------------------------- tokens


@wfr.group()
def tokens() -> None:
    """API tokens: one tenant and one role each, shown once, stored hashed (WFR_DATABASE_URL only)."""


def _tokens_table(found: list[TokenView]) -> list[str]:
    rows = [[t.id, t.tenant, t.name, t.role, t.prefix + "…", instant(t.createdAt), instant(t.lastUsedAt), instant(t.revokedAt)] for t in found]
    return table(["ID", "TENANT", "NAME", "ROLE", "PREFIX", "CREATED", "LAST USED", "REVOKED"], rows, right=[0])


@tokens.command("create")
@click.option("--tenant", required=True, help="The tenant the token acts for.")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer < operator < author < admin (each includes the ones before).")
@click.option("--name", default=None, help="A name unique in the tenant (default: token-<random>).")
@json_option
def tokens_create(tenant: str, role: str, name: str | None, as_json: bool) -> None:
    """Create a token; it is printed alone on the last line, this once (store it now)."""
    check_texts((tenant, "--tenant"), (name, "--name"))
    created = call("database", lambda ops: ops.create_token(tenant, role, name))
    if as_json:
        echo_json(created)
        return
    click.echo(f"token {cell(created.name)} (id {created.id}) for tenant {cell(created.tenant)}, role {created.role}; it is not shown again:")
    click.echo(created.token)


@tokens.command("list")
@click.option("--tenant", default=None, help="Only this tenant's tokens (default: every tenant's).")
@json_option
def tokens_list(tenant: str | None, as_json: bool) -> None:
    """Tokens, oldest first (never their values)."""
    check_texts((tenant, "--tenant"))
    found = call("database", lambda ops: ops.list_tokens(tenant))
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no tokens")
        return
    for line in _tokens_table(found):
        click.echo(line)


@tokens.command("revoke")
@click.argument("token")
@click.option("--tenant", default=None, help="The tenant whose token NAME is (needed when several tenants use the name).")
@json_option
def tokens_revoke(token: str, tenant: str | None, as_json: bool) -> None:
    """Revoke a token by NAME or ID: it is refused from now on."""
    check_texts((token, "NAME|ID"), (tenant, "--tenant"))
    revoked = call("database", lambda ops: ops.revoke_token(token, tenant))
    if as_json:
        echo_json(revoked)
        return
    click.echo(f"revoked token {cell(revoked.name)} (id {revoked.id}) of tenant {cell(revoked.tenant)} at {instant(revoked.revokedAt)}")


# -------------------------------------------------------------------------------- redaction


@wfr.group()
def redaction() -> None:
    """Per-tenant redaction rules: what `wfr` and the API show as "[REDACTED]" (paths such as payload.card.*, or key patterns such as *password*)."""


@redaction.command("list")
@tenant_option
@json_option
def redaction_list(tenant: str, as_json: bool) -> None:
    """The tenant's redaction rules."""
    check_texts((tenant, "--tenant"))
    rules = call("database", lambda ops: ops.list_redaction_rules(tenant))
    if as_json:
        echo_json(rules)
        return
    if not rules:
        click.echo("no redaction rules (secret references are always redacted)")
        return
    for line in table(["ID", "KIND", "PATTERN", "CREATED", "BY"], ([r.id, r.kind, r.pattern, instant(r.createdAt), r.createdBy] for r in rules), right=[0]):
        click.echo(line)


@redaction.command("add")
@click.option("--path", default=None, help="A dotted path from payload, vars, meta, error, input, output, event, context or response; * for any one segment.")
@click.option("--key", default=None, help="A key name pattern matched at any depth, * for anything (case-insensitive).")
@actor_option
@tenant_option
@json_option
def redaction_add(path: str | None, key: str | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Add a rule (adding an existing rule changes nothing)."""
    if (path is None) == (key is None):
        raise click.UsageError("give one of --path and --key")
    check_texts((path, "--path"), (key, "--key"), (tenant, "--tenant"))
    kind = "path" if path is not None else "key"
    rule = request(RedactionRuleRequest, {"pattern": f"--{kind}"}, kind=kind, pattern=path if path is not None else key)
    who = actor_of(actor)
    added = call("database", lambda ops: ops.add_redaction_rule(tenant, rule, actor=who))
    if as_json:
        echo_json(added)
        return
    click.echo(f"redaction rule {added.id}: {added.kind} {cell(added.pattern)}")


@redaction.command("remove")
@click.argument("rule_id", type=click.IntRange(1, 2**63 - 1), metavar="ID")
@tenant_option
@json_option
def redaction_remove(rule_id: int, tenant: str, as_json: bool) -> None:
    """Remove a rule by its ID (see `wfr redaction list`)."""
    check_texts((tenant, "--tenant"))
    call("database", lambda ops: ops.remove_redaction_rule(tenant, rule_id))
    if as_json:
        echo_json({"id": rule_id, "removed": True})
        return
    click.echo(f"removed redaction rule {rule_id}")


# ---------------------------------------------------------------------------------- tenants


class _Days(click.ParamType):
    """A retention in days (1–36500), or ``forever``."""

    name = "DAYS|forever"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "forever":
            return None
        try:
            days = int(text)
        except ValueError:
            days = 0
        if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
            self.fail(f"{value!r} is not a number of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, nor 'forever'", param, ctx)
        return days


@wfr.group()
def tenants() -> None:
    """Per-tenant settings: how long ended runs and the idempotency ledger are kept (applied by domain-worker's housekeeping)."""


def _retention_lines(found: RetentionSettings) -> list[str]:
    runs = "forever" if found.runRetentionDays is None else f"{found.runRetentionDays} days"
    return [
        f"tenant {cell(found.tenant)}",
        f"  ended runs kept:   {runs}",
        f"  ledger rows kept:  {found.ledgerRetentionDays} days after their run is gone (at least)",
        f"  updated:           {instant(found.updatedAt)}{f' by {cell(found.updatedBy)}' if found.updatedBy else ''}",
    ]


@tenants.command("show")
@tenant_option
@json_option
def tenants_show(tenant: str, as_json: bool) -> None:
    """The tenant's retention (never set: runs kept forever, ledger rows 365 days)."""
    check_texts((tenant, "--tenant"))
    found = call("database", lambda ops: ops.get_tenant_settings(tenant))
    if as_json:
        echo_json(found)
        return
    for line in _retention_lines(found):
        click.echo(line)


@tenants.command("set-retention")
@click.option("--runs-days", type=_Days(), required=True, help="Delete ended runs (and their steps, waits, tasks, history) this many days after they ended; 'forever' keeps them.")
@click.option("--ledger-days", type=_Days(), default=None, help="Delete idempotency-ledger rows this many days old whose run is gone (default 365).")
@actor_option
@tenant_option
@json_option
def tenants_set_retention(runs_days: int | None, ledger_days: int | None, actor: str | None, tenant: str, as_json: bool) -> None:
    """Set how long the tenant's ended runs and idempotency-ledger rows are kept."""
    check_texts((tenant, "--tenant"))
    who = actor_of(actor)
    found = call("database", lambda ops: ops.set_retention(tenant, runs_days, ledger_days, actor=who))
    if as_json:
        echo_json(found)
        return
    for line in _retention_lines(found):
        click.echo(line)
