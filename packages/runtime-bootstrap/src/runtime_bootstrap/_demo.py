"""The demo: publish the example workflows, launch them on the embedded stack, show timelines."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from runtime_bootstrap._stack import Stack
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import TERMINAL_STATUSES, run_view

__all__ = ["format_timeline", "run_demo"]


def format_timeline(view: dict[str, Any], indent: str = "   ") -> list[str]:
    """Human-readable step timeline of a run view."""
    lines = []
    for step in view["steps"]:
        duration = f"{step['durationMs']} ms" if step.get("durationMs") is not None else ""
        attempts = f"{step['attempts']} attempt{'s' if step['attempts'] != 1 else ''}"
        lines.append(f"{indent}#{step['seq']:<3} {step['stepPath']:<34} {step['type']:<18} {step['stepId']:<16} {step['status']:<10} {attempts:<11} {duration}")
        if step.get("error"):
            lines.append(f"{indent}     error: {step['error'].get('category')}: {step['error'].get('message')}")
    return lines


async def run_demo(stack: Stack, examples: Path, tenant: str = "demo") -> bool:
    """Publish every ``*.json`` definition in ``examples`` and run each with its ``.payload.json``.

    Returns:
        True when every run SUCCEEDED.
    """
    files = sorted(p for p in examples.glob("*.json") if not p.name.endswith(".payload.json"))
    if not files:
        raise click.ClickException(f"no example definitions in {examples}")
    documents = [json.loads(p.read_text()) for p in files]
    click.echo(f"publishing {len(documents)} example workflows from {examples} (tenant {tenant!r}) …")
    outcome = await publish_definitions(stack.database, stack.registry, tenant, documents)
    if not outcome.published:
        for problem in outcome.errors:
            click.echo(f"  {problem['workflowId']} {problem['stepPath'] or ''} {problem['code']}: {problem['message']}", err=True)
        return False
    all_ok = True
    for path, document in zip(files, documents, strict=True):
        payload_file = path.with_name(path.stem + ".payload.json")
        payload = json.loads(payload_file.read_text()) if payload_file.exists() else {}
        started = time.perf_counter()
        launched = await stack.launcher.launch(tenant, document["id"], payload, version=document["version"])
        handle = stack.client.get_workflow_handle(launched.temporal_workflow_id)
        try:
            await asyncio.wait_for(handle.result(), timeout=60)
        except Exception:
            pass
        view = await run_view(stack.database, launched.run_id)
        assert view is not None
        elapsed = time.perf_counter() - started
        ok = view["status"] == "SUCCEEDED"
        all_ok &= ok
        click.echo(f"\n== {document['id']} v{document['version']}  run {launched.run_id}  {view['status']} in {elapsed:.2f}s")
        for line in format_timeline(view):
            click.echo(line)
        click.echo(f"   vars: {json.dumps(view['vars'], sort_keys=True)}")
        if view["status"] not in TERMINAL_STATUSES:
            click.echo("   (did not finish within 60 s)")
    return all_ok
