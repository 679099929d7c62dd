"""Faults found by fault and hostile-input testing (issue 10), each kept fixed by a test.

Short timers, cancel reaching a running action, oversized and unstorable values, durations the
runtime cannot honour, and every route by which a secret used to leak — on real runs against a
real Temporal dev server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from runtime_bootstrap._devserver import DevServer
from runtime_bootstrap._stack import Stack
from runtime_core.actions import ActionRegistry
from runtime_core.activities import is_database_unavailable
from runtime_core.dsl import RetryPolicy
from runtime_core.errors import RunError
from runtime_core.persistence import ActionInvocation, Database, DataStoreEntry, RunRow, StepRow
from runtime_core.publishing import publish_definitions
from runtime_core.readmodel import run_view
from runtime_core.secrets import REDACTED, EnvSecretProvider, SecretNotFound, resolve_secrets
from runtime_core.values import MAX_DURATION_MS

from .conftest import isolated_namespace, running_stack


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def _publish(stack: Stack, tenant: str, *definitions: dict[str, Any]) -> None:
    outcome = await publish_definitions(stack.database, stack.registry, tenant, list(definitions))
    assert outcome.published, outcome.errors


async def _finish(stack: Stack, run_id: str, timeout: float = 60) -> dict[str, Any]:
    handle = stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}")
    try:
        await asyncio.wait_for(handle.result(), timeout)
    except TimeoutError:
        raise
    except Exception:
        pass
    view = await run_view(stack.database, run_id)
    assert view is not None
    return view


async def _run(stack: Stack, definition: dict[str, Any], payload: dict[str, Any] | None = None, tenant: str | None = None) -> dict[str, Any]:
    tenant = tenant or _tenant()
    await _publish(stack, tenant, definition)
    launched = await stack.launcher.launch(tenant, definition["id"], payload or {})
    return await _finish(stack, launched.run_id)


def _action(step_id: str, action_id: str, mapping: dict[str, Any], save: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"actionId": action_id, "version": 1, "inputMapping": mapping}
    if save:
        config["saveAs"] = save
    return {"id": step_id, "type": "action.call", "config": config}


# --------------------------------------------------------------------------- 1. short timers


async def test_short_time_waits_always_end(stack: Stack) -> None:
    """A time.wait shorter than it takes to open the wait used to fail its workflow task forever."""
    tenant = _tenant()
    definitions = [
        {"id": f"nap-{ms}", "version": 1, "name": "nap", "steps": [
            {"id": "nap", "type": "time.wait", "config": {"durationMs": ms}},
            {"id": "after", "type": "transform.assign", "config": {"assign": {"done": {"$expr": "true"}}}}]}
        for ms in (1, 2, 5, 10, 20)
    ]
    await _publish(stack, tenant, *definitions)
    launched = [await stack.launcher.launch(tenant, d["id"], {}) for d in definitions for _ in range(2)]
    views = await asyncio.gather(*(_finish(stack, r.run_id, 30) for r in launched))
    assert [v["status"] for v in views] == ["SUCCEEDED"] * len(launched)
    assert all(v["vars"]["done"] is True and v["waits"] == [{"type": "time", "status": "RESOLVED", "eventName": None, "key": None}] for v in views)


# --------------------------------------------------------------- 3. cancel reaches the action


async def test_cancel_stops_a_running_delay_within_two_seconds(temporal_server: DevServer, tmp_path: Path) -> None:
    """Cancelling a run stops its running core.delay (the attempt heartbeats and learns of the cancel)."""
    registry = ActionRegistry.default()
    delay = registry.get("core.delay", 1)
    assert delay is not None
    stopped: dict[str, float] = {}

    async def watched_delay(ctx: Any, data: Any) -> Any:
        try:
            return await delay.handler(ctx, data)
        except asyncio.CancelledError:
            stopped[ctx.run_id] = time.monotonic()
            raise

    registry.register("core.delay", 1, watched_delay, replace=True)
    with isolated_namespace() as namespace:
        stack_cm = running_stack(temporal_server, namespace, Database(f"sqlite:///{tmp_path / 'cancel.db'}"), registry)
        view, stopped_at, asked = await _cancel_during_delay(stack_cm, stopped)
    assert view["status"] == "CANCELED"
    assert stopped_at is not None, "the running action never learnt of the cancel"
    assert stopped_at - asked < 2.0, f"the action stopped {stopped_at - asked:.2f} s after the cancel"
    assert [(s["stepId"], s["status"]) for s in view["steps"]] == [("nap", "CANCELED")]


async def _cancel_during_delay(stack_cm: Any, stopped: dict[str, float]) -> tuple[dict[str, Any], float | None, float]:
    async with stack_cm as stack:
        tenant = _tenant()
        await _publish(stack, tenant, {"id": "long-nap", "version": 1, "name": "n", "steps": [_action("nap", "core.delay", {"ms": 60_000})]})
        launched = await stack.launcher.launch(tenant, "long-nap", {})
        for _ in range(200):  # the STARTED row is written once the action has run 0.25 s
            view = await run_view(stack.database, launched.run_id)
            if view and view["steps"]:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        asked = time.monotonic()
        await stack.launcher.cancel(tenant, launched.run_id)
        view = await _finish(stack, launched.run_id, 30)
        for _ in range(60):
            if launched.run_id in stopped:
                break
            await asyncio.sleep(0.05)
    return view, stopped.get(launched.run_id), asked


# ------------------------------------------------------------------- 5 and 9. unusable values


def _big_registry() -> ActionRegistry:
    registry = ActionRegistry.default()

    async def big(ctx: Any, data: Any) -> Any:
        return {"blob": "x" * int(data["kb"] * 1024)}

    async def nul(ctx: Any, data: Any) -> Any:
        return {"text": "a\x00b"}

    registry.register("test.big", 1, big)
    registry.register("test.nul", 1, nul)
    return registry


@pytest.fixture(scope="module")
async def big_stack(temporal_server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A stack whose registry has actions returning large and NUL-bearing outputs."""
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('big') / 'big.db'}")
    with isolated_namespace() as namespace:
        async with running_stack(temporal_server, namespace, database, _big_registry()) as stack:
            yield stack


async def test_oversized_action_output_fails_the_step_naming_size_and_limit(big_stack: Stack) -> None:
    """An output over the value limit is the action's error; nothing reaches Temporal's history."""
    view = await _run(big_stack, {"id": "big-out", "version": 1, "name": "b", "steps": [_action("get", "test.big", {"kb": 700}, "vars.blob")]})
    assert view["status"] == "FAILED"
    error = view["error"]
    assert error["category"] == "ActionError" and error["code"] == "VALUE_TOO_LARGE"
    assert "700.0 KB" in error["message"] and "512.0 KB" in error["message"] and error["nodePath"] == "root.steps[0]"


async def test_oversized_assignment_fails_the_step_naming_the_path(big_stack: Stack) -> None:
    """A value built in the run over the limit fails its step, catchable, before anything is sent."""
    steps = [
        _action("get", "test.big", {"kb": 300}, "vars.a"),
        {"id": "guard", "type": "control.tryCatch", "captureErrorAs": "caught", "try": [
            {"id": "twice", "type": "transform.assign", "config": {"assign": {"vars.b": {"$expr": "[vars.a, vars.a]"}}}}],
         "catch": [{"id": "note", "type": "transform.assign", "config": {"assign": {"msg": {"$expr": "vars.caught.message"}, "vars.a": {"$expr": "null"}}}}]},
    ]
    view = await _run(big_stack, {"id": "big-assign", "version": 1, "name": "b", "steps": steps})
    assert view["status"] == "SUCCEEDED", view["error"]
    assert view["vars"]["msg"].startswith("vars.b: the value is 600.") and "over the limit of 512.0 KB" in view["vars"]["msg"]
    assert view["vars"]["caught"]["category"] == "ValidationError" and view["vars"]["caught"]["code"] == "VALUE_TOO_LARGE"


async def test_a_run_whose_result_would_be_refused_by_temporal_fails_instead(big_stack: Stack) -> None:
    """Values each under the limit, together over the run limit: FAILED in Temporal and the read model alike."""
    steps = [_action(f"get{i}", "test.big", {"kb": 400}, f"vars.part{i}") for i in range(3)]
    view = await _run(big_stack, {"id": "big-state", "version": 1, "name": "b", "steps": steps})
    assert view["status"] == "FAILED"
    assert view["error"]["code"] == "VALUE_TOO_LARGE" and "over the limit of 1024.0 KB" in view["error"]["message"]
    assert "vars.part" in view["error"]["message"]
    described = await big_stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{view['runId']}").describe()
    assert described.status is not None and described.status.name == "FAILED"


async def test_nul_characters_fail_the_step_cleanly_on_every_database(stack: Stack) -> None:
    """"\\u0000" (valid JSON, which PostgreSQL's jsonb refuses) fails its step the same way on both databases."""
    steps = [{"id": "nul", "type": "transform.assign", "config": {"assign": {"s": {"$expr": "'a\\u0000b'"}}}}]
    view = await _run(stack, {"id": "nul-assign", "version": 1, "name": "n", "steps": steps})
    assert view["status"] == "FAILED"
    assert view["error"]["category"] == "ValidationError" and "NUL character" in view["error"]["message"]
    assert view["error"]["message"].startswith("vars.s:")


async def test_nul_in_an_action_output_is_the_actions_error(big_stack: Stack) -> None:
    """An action returning text with U+0000 fails its attempt instead of breaking the read model."""
    view = await _run(big_stack, {"id": "nul-out", "version": 1, "name": "n", "steps": [_action("get", "test.nul", {}, "vars.t")]})
    assert view["status"] == "FAILED" and "NUL character" in view["error"]["message"]


# --------------------------------------------------------------------- 6. durations at run time


def test_backoff_never_overflows() -> None:
    """A huge multiplier or attempt number gives the capped delay, never an OverflowError."""
    from runtime_core.interpreter._engine import _backoff_ms

    # publishing refuses such a policy now; definitions published before may still hold one
    policy = RetryPolicy.model_construct(maxAttempts=5, backoffMs=10, backoffMultiplier=1e300, maxDelayMs=None, jitter=False, retryOn=None)
    assert _backoff_ms(policy, 1) == 10.0
    assert _backoff_ms(policy, 3) == float(MAX_DURATION_MS)
    assert _backoff_ms(RetryPolicy.model_validate({"maxAttempts": 5, "backoffMs": 200, "maxDelayMs": 5000}), 4) == 1600.0


def test_durations_beyond_the_limit_are_validation_errors() -> None:
    """A duration the runtime cannot honour is a ValidationError naming the field, not an OverflowError."""
    from runtime_core.interpreter._engine import _duration

    assert _duration(1500, "config.durationMs").total_seconds() == 1.5
    with pytest.raises(RunError) as caught:
        _duration(10**17, "config.durationMs")
    assert caught.value.info.category == "ValidationError" and "config.durationMs" in caught.value.info.message


# ------------------------------------------------------------------------------- 7. secrets


def test_env_secret_mapping_is_injective() -> None:
    """Tenants that used to share variables no longer do; names cannot reach another tenant's variable."""
    env = {"WFR_SECRET_ACME_PROD__KEY": "acme-prod's", "WFR_SECRET_SHARED": "everyone's"}
    provider = EnvSecretProvider(env)
    assert provider.get("acme-prod", "KEY") == "acme-prod's"
    for tenant in ("acme_prod", "ACME.PROD", "Acme-Prod", "acme--prod"):
        with pytest.raises(SecretNotFound):
            provider.get(tenant, "KEY")
        assert provider.get(tenant, "SHARED") == "everyone's"
    with pytest.raises(SecretNotFound, match="not a valid secret name"):
        provider.get("other", "ACME_PROD__KEY")  # would have read acme-prod's variable through the shared fallback
    variables = {v for t in ("a", "a-b", "b", "ab") for n in ("X", "B_X", "A_B_X") for v in EnvSecretProvider.variables(t, n)[:1]}
    assert len(variables) == 12


def test_only_the_definitions_references_are_resolved() -> None:
    """resolve_secrets with paths resolves the authored places and leaves look-alike data alone."""

    class Provider:
        def get(self, tenant: str, name: str) -> str:
            return f"<{tenant}:{name}>"

    value = {"auth": {"$secret": "TOKEN"}, "data": {"$secret": "TOKEN"}, "list": [{"$secret": "OTHER"}]}
    resolved, used = resolve_secrets(value, Provider(), "t", [["auth"], ["list", 0]])
    assert resolved == {"auth": "<t:TOKEN>", "data": {"$secret": "TOKEN"}, "list": ["<t:OTHER>"]}
    assert used == ["<t:TOKEN>", "<t:OTHER>"]
    assert value["auth"] == {"$secret": "TOKEN"}  # the request is never modified


async def _history(stack: Stack, run_id: str) -> str:
    return (await stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").fetch_history()).to_json()


async def _all_rows(stack: Stack, tenant: str) -> str:
    """Every stored row of the tenant that could hold a value, as one JSON text."""
    from runtime_core.persistence import RunSnapshot, RuntimeEvent, TaskRow, WaitRow

    out = []
    async with stack.database.sessions() as session:
        for model in (RunRow, StepRow, ActionInvocation, DataStoreEntry, RuntimeEvent, RunSnapshot, TaskRow, WaitRow):
            for row in (await session.execute(select(model).where(model.tenant == tenant))).scalars():
                out.append({c.name: getattr(row, c.key if hasattr(c, "key") else c.name) for c in model.__table__.columns})
    return json.dumps(out, default=str)


async def test_data_never_resolves_a_secret(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A {"$secret": NAME} in a launch payload or an event is data: echoed, stored and returned as written."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("WFR_SECRET_API_KEY", secret)
    tenant = _tenant()
    definition = {"id": "leaky", "version": 1, "name": "l", "steps": [
        _action("echo", "core.echo", {"v": {"$expr": "payload.v"}}, "vars.echoed"),
        _action("set", "data.set", {"key": "k", "value": {"$expr": "payload.v"}}),
        _action("get", "data.get", {"key": "k"}, "vars.got"),
        {"id": "wait", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "'k1'"}}},
        _action("echo2", "core.echo", {"v": {"$expr": "vars.event.v"}}, "vars.echoed2"),
        _action("fail", "core.fail", {"message": {"$expr": "$string(payload.v)"}, "succeedOnAttempt": 2}, None),
    ]}
    definition["steps"][-1]["retry"] = {"maxAttempts": 2, "backoffMs": 0}
    await _publish(stack, tenant, definition)
    from runtime_core.ingress import EventIngress

    launched = await stack.launcher.launch(tenant, "leaky", {"v": {"$secret": "API_KEY"}})
    for _ in range(200):
        view = await run_view(stack.database, launched.run_id)
        if view and view["status"] == "WAITING":
            break
        await asyncio.sleep(0.05)
    await EventIngress(stack.database).send(tenant, "go", "k1", {"v": {"$secret": "API_KEY"}}, event_id=f"e-{uuid.uuid4().hex}")
    view = await _finish(stack, launched.run_id)
    assert view["status"] == "SUCCEEDED", view["error"]
    assert view["vars"]["echoed"] == {"v": {"$secret": "API_KEY"}}
    assert view["vars"]["echoed2"] == {"v": {"$secret": "API_KEY"}}
    assert view["vars"]["got"]["value"] == {"$secret": "API_KEY"}
    assert secret not in await _history(stack, launched.run_id)
    assert secret not in await _all_rows(stack, tenant)


async def test_a_resolved_secret_never_leaves_its_action(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """An authored reference reaches the action; its value reaches no error, history, projection or data-store row."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    tenant = _tenant()
    monkeypatch.setenv(f"WFR_SECRET_{tenant.upper().replace('-', '_')}__TOKEN", secret)
    definition = {"id": "uses", "version": 1, "name": "u", "steps": [
        _action("set", "data.set", {"key": "k", "value": {"nested": {"$secret": "TOKEN"}}}),
        _action("get", "data.get", {"key": "k"}, "vars.got"),
        _action("inc", "data.increment", {"key": {"$secret": "TOKEN"}}, "vars.inc"),
        {**_action("fail", "core.fail", {"message": {"$secret": "TOKEN"}, "code": {"$secret": "TOKEN"}}), "onError": {"policy": "continue"}},
        _action("fail2", "core.fail", {"message": "no"}, None),
    ]}
    definition["steps"][-1]["config"]["inputMapping"] = {"message": {"$secret": "TOKEN"}}
    view = await _run(stack, definition, tenant=tenant)
    assert view["status"] == "FAILED"
    assert view["vars"]["got"]["value"] == {"nested": REDACTED}
    assert view["error"]["message"] == REDACTED and view["vars"]["inc"]["key"] == REDACTED
    steps = {s["stepId"]: s for s in view["steps"]}
    assert steps["fail"]["error"]["message"] == REDACTED and steps["fail"]["error"]["code"] == REDACTED
    assert secret not in await _history(stack, view["runId"])
    assert secret not in await _all_rows(stack, tenant)


# ------------------------------------------------------------------ 2. infrastructure failures


def test_database_unavailability_is_infrastructure() -> None:
    """Locked, unreachable or restarting databases are retried underneath; an action's own bug is not."""

    class Orig(Exception):
        def __init__(self, message: str, sqlstate: str | None = None) -> None:
            super().__init__(message)
            self.sqlstate = sqlstate

    assert is_database_unavailable(sa_exc.OperationalError("UPDATE x", {}, Orig("database is locked")))
    assert is_database_unavailable(sa_exc.DBAPIError("SELECT 1", {}, Orig("terminating connection", "57P01")))
    assert is_database_unavailable(sa_exc.DBAPIError("SELECT 1", {}, Orig("deadlock", "40P01")))
    assert is_database_unavailable(ConnectionRefusedError())
    assert not is_database_unavailable(sa_exc.IntegrityError("INSERT", {}, Orig("duplicate key", "23505")))
    assert not is_database_unavailable(ValueError("an action's own bug"))


async def test_slow_actions_hold_no_database_connection(temporal_server: DevServer, tmp_path: Path) -> None:
    """Twenty runs sleeping in core.delay at once hold no pooled connection while they sleep (they used to exhaust the pool)."""
    database = Database(f"sqlite:///{tmp_path / 'pool.db'}")
    with isolated_namespace() as namespace:
        async with running_stack(temporal_server, namespace, database) as stack:
            tenant = _tenant()
            await _publish(stack, tenant, {"id": "sleepy", "version": 1, "name": "s", "steps": [_action("nap", "core.delay", {"ms": 2500})]})
            runs = [await stack.launcher.launch(tenant, "sleepy", {}) for _ in range(20)]
            pool = database.engine.sync_engine.pool
            held = 0
            while True:
                async with database.sessions() as session:
                    sleeping = (await session.execute(select(StepRow).where(StepRow.tenant == tenant, StepRow.status == "STARTED"))).scalars().all()
                held = max(held, pool.checkedout())  # type: ignore[attr-defined]
                if len(sleeping) == 20:
                    break
                await asyncio.sleep(0.05)
            for _ in range(10):
                held = max(held, pool.checkedout())  # type: ignore[attr-defined]
                await asyncio.sleep(0.1)
            views = await asyncio.gather(*(_finish(stack, r.run_id) for r in runs))
    assert [v["status"] for v in views] == ["SUCCEEDED"] * 20
    assert held <= 3, f"{held} connections were held while the actions slept"


async def test_an_overlong_correlation_key_fails_the_step_instead_of_the_wait_row(stack: Stack) -> None:
    """A key computed longer than its column (500) is an ExpressionError, not a wait row that can never be written."""
    steps = [{"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "$pad('', 600, 'k')"}}}]
    view = await _run(stack, {"id": "long-key", "version": 1, "name": "k", "steps": steps})
    assert view["status"] == "FAILED"
    assert view["error"]["category"] == "ExpressionError" and "600 characters" in view["error"]["message"]


async def test_a_registered_form_schema_the_database_cannot_store_is_refused(stack: Stack) -> None:
    """NUL in a registered form schema (PostgreSQL's jsonb refuses it) is a TaskError on both databases."""
    from runtime_core.ingress import TaskError, register_task_definition

    with pytest.raises(TaskError, match="NUL character"):
        await register_task_definition(stack.database, _tenant(), "review", {"type": "object", "description": "a\x00b"})
    with pytest.raises(TaskError, match="task type"):
        await register_task_definition(stack.database, _tenant(), "", {"type": "object"})
