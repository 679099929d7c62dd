"""Edges keep their contracts: publish, launch, task completion and `wfr` refuse bad input cleanly.

One explicit regression test per exception that once escaped (issue 10), and the limits that
keep a published definition from being one the runtime cannot run (issue 6). Fuzzing of the same
edges: tests/reliability/test_fuzz_edges.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from runtime_bootstrap._stack import Stack
from runtime_core.dsl import MAX_ATTEMPTS, MAX_DURATION_MS, MAX_VERSION
from runtime_core.persistence import DefinitionVersion, WorkflowDefinitionRow
from runtime_core.publishing import publish_definitions
from runtime_core.values import MAX_DEFINITION_BYTES


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _definition(**fields: Any) -> dict[str, Any]:
    return {"id": "edge", "version": 1, "name": "edge", "steps": [{"id": "r", "type": "control.return"}], **fields}


def _step(step: dict[str, Any]) -> dict[str, Any]:
    return _definition(steps=[step])


def _echo(**fields: Any) -> dict[str, Any]:
    return {"id": "a", "type": "action.call", "config": {"actionId": "core.echo", "version": 1}, **fields}


async def _definition_rows(stack: Stack, tenant: str) -> int:
    async with stack.database.sessions() as session:
        versions = (await session.execute(select(func.count()).select_from(DefinitionVersion).where(DefinitionVersion.tenant == tenant))).scalar_one()
        heads = (await session.execute(select(func.count()).select_from(WorkflowDefinitionRow).where(WorkflowDefinitionRow.tenant == tenant))).scalar_one()
    return int(versions) + int(heads)


async def _refused(stack: Stack, documents: list[Any], tenant: Any = None) -> list[dict[str, Any]]:
    """Publish ``documents``; assert the refusal is clean (problems with reasons, nothing written)."""
    tenant = _tenant() if tenant is None else tenant
    outcome = await publish_definitions(stack.database, stack.registry, tenant, documents)
    assert not outcome.published and outcome.errors
    for problem in outcome.problems:
        assert problem["code"] and problem["message"] and problem["stepPath"]
        problem["message"].encode("utf-8")  # storable and printable
        assert "\x00" not in problem["message"]
    if isinstance(tenant, str) and len(tenant) <= 128 and "\x00" not in tenant:
        assert await _definition_rows(stack, tenant) == 0
    return outcome.errors


# ------------------------------------------------------------------------ publish (issue 10)


async def test_publish_refuses_a_list_as_id(stack: Stack) -> None:
    """Once TypeError (unhashable list): now a schema problem at `id`."""
    errors = await _refused(stack, [_definition(id=["a", "b"])])
    assert [(e["code"], e["workflowId"]) for e in errors] == [("SCHEMA_STRING_TYPE", None)]
    assert errors[0]["message"].startswith("id:")


async def test_publish_refuses_an_integer_of_thousands_of_digits(stack: Stack) -> None:
    """Once ValueError (int to str beyond 4,300 digits): now named by its step and field."""
    errors = await _refused(stack, [_step({"id": "a", "type": "action.call", "config": {"actionId": "core.echo", "version": 10**5000}})])
    assert [(e["stepPath"], e["stepId"], e["code"]) for e in errors] == [("root.steps[0]", "a", "INVALID_VALUE")]
    assert errors[0]["message"].startswith("config.version: is an integer beyond 64 bits")


async def test_publish_refuses_a_lone_surrogate(stack: Stack) -> None:
    """Once UnicodeEncodeError while hashing: now refused at the path of the text."""
    errors = await _refused(stack, [_step({"id": "x", "type": "transform.assign", "config": {"assign": {"v": {"$expr": "'\ud800'"}}}})])
    assert [(e["stepPath"], e["code"]) for e in errors] == [("root.steps[0]", "INVALID_VALUE")]
    assert "config.assign.v.$expr: contains a lone surrogate" in errors[0]["message"]


@pytest.mark.parametrize("version", [2**63, 2**31, 0, -1])
async def test_publish_refuses_versions_the_columns_cannot_hold(stack: Stack, version: int) -> None:
    """Once OverflowError (≥ 2^63, SQLite) or a DBAPIError (≥ 2^31, PostgreSQL's 32-bit column)."""
    errors = await _refused(stack, [_definition(version=version)])
    assert len(errors) == 1 and errors[0]["stepPath"] == "root" and errors[0]["message"].startswith("version:")


async def test_publish_refuses_text_the_databases_cannot_store(stack: Stack) -> None:
    """NUL (PostgreSQL's jsonb refuses it) and strings longer than their columns, on both databases."""
    errors = await _refused(stack, [_definition(name="a\x00b")])
    assert errors[0]["message"].startswith("name: contains the NUL character")
    long_fields: list[dict[str, Any]] = [
        _definition(id="a" * 201),
        _definition(name="n" * 501),
        _step({"id": "s" * 201, "type": "control.return"}),
        _definition(trigger={"type": "event", "eventName": "e" * 201}),
        _step({"id": "w", "type": "event.wait", "config": {"eventName": "e" * 201, "correlationKey": {"$expr": "'k'"}}}),
        _step({"id": "h", "type": "human.task", "config": {"taskType": "t" * 201, "title": {"$expr": "'t'"}}}),
        _step({"id": "a", "type": "action.call", "config": {"actionId": "c" * 201, "version": 1}}),
    ]
    for document in long_fields:
        errors = await _refused(stack, [document])
        assert any(e["code"] == "SCHEMA_STRING_TOO_LONG" for e in errors), errors


async def test_publish_refuses_a_definition_over_the_size_limit(stack: Stack) -> None:
    """A definition over MAX_DEFINITION_BYTES is refused with its size and the limit."""
    errors = await _refused(stack, [_definition(description="x" * MAX_DEFINITION_BYTES)])
    assert [e["code"] for e in errors] == ["DEFINITION_TOO_LARGE"]
    assert "over the limit of 256.0 KB" in errors[0]["message"]


async def test_publish_answers_anything_with_problems(stack: Stack) -> None:
    """Non-objects, NaN, sets, non-string keys, deep nesting, a bad tenant: problems, never exceptions."""
    deep: Any = "x"
    for _ in range(150):
        deep = [deep]
    documents: list[Any] = [None, 7, "text", [1, 2], _definition(description=float("nan")), _definition(steps={1, 2}),
                            _definition(payloadSchema={1: "x"}), _definition(payloadSchema={"x": deep})]
    errors = await _refused(stack, documents)
    assert len(errors) == len(documents)
    assert "nests deeper than 100 levels" in errors[-1]["message"]
    for tenant in ("", "t" * 129, "a\x00b", ["t"]):
        errors = await _refused(stack, [_definition()], tenant=tenant)
        assert [e["code"] for e in errors] == ["INVALID_TENANT"]


async def test_publish_refusal_lists_every_document_and_writes_nothing(stack: Stack) -> None:
    """A good definition in a batch with bad ones is not stored; every bad one is reported."""
    tenant = _tenant()
    good = _definition(id="good")
    errors = await _refused(stack, [good, _definition(id="bad1", name="\ud800"), _definition(id="bad2", version=2**40)], tenant=tenant)
    assert sorted({e["workflowId"] for e in errors}) == ["bad1", "bad2"]


# -------------------------------------------------------------------- limits (issue 6)


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "s", "type": "time.wait", "config": {"durationMs": 10**17}}, "config.durationMs"),
        ({"id": "s", "type": "event.wait", "config": {"eventName": "e", "correlationKey": {"$expr": "'k'"}, "timeoutMs": 10**17}}, "config.timeoutMs"),
        ({"id": "s", "type": "human.task", "config": {"taskType": "t", "title": {"$expr": "'t'"}, "timeoutMs": 10**17}}, "config.timeoutMs"),
        (_echo(id="s", retry={"maxAttempts": 2, "backoffMs": 10**17}), "retry.backoffMs"),
        (_echo(id="s", retry={"maxAttempts": 2, "backoffMs": 1, "maxDelayMs": 10**17}), "retry.maxDelayMs"),
        (_echo(id="s", retry={"maxAttempts": MAX_ATTEMPTS + 1, "backoffMs": 1, "maxDelayMs": 10}), "retry.maxAttempts"),
        (_echo(id="s", retry={"maxAttempts": 3, "backoffMs": 1, "backoffMultiplier": 1e308}), "retry.backoffMultiplier"),
        (_echo(id="s", retry={"maxAttempts": 60, "backoffMs": 1000}), "retry"),
        ({"id": "s", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "i", "concurrency": 10**6, "body": []}, "concurrency"),
        ({"id": "s", "type": "control.callWorkflow", "workflowId": "edge", "workflowVersion": 2**31}, "workflowVersion"),
        ({"id": "s", "type": "action.call", "config": {"actionId": "core.echo", "version": 2**31}}, "config.version"),
    ],
)
async def test_publish_refuses_numbers_the_runtime_cannot_honour(stack: Stack, step: dict[str, Any], field: str) -> None:
    """Durations that overflow `timedelta`, unbounded attempts and growth, 32-bit versions: refused with the step path."""
    errors = await _refused(stack, [_step(step)])
    assert {(e["stepPath"], e["stepId"]) for e in errors} == {("root.steps[0]", "s")}
    assert errors[0]["message"].startswith(f"{field}:"), errors


async def test_a_retry_policy_whose_delays_outgrow_the_limit_is_explained(stack: Stack) -> None:
    """Without maxDelayMs, 60 doublings of 1 s would wait ~10^20 ms: refused, with the fix."""
    errors = await _refused(stack, [_step(_echo(id="s", retry={"maxAttempts": 60, "backoffMs": 1000}))])
    assert errors[0]["code"] == "SCHEMA_RETRY_DELAY_TOO_LONG" and "set maxDelayMs" in errors[0]["message"]
    ok = await publish_definitions(stack.database, stack.registry, _tenant(), [_step(_echo(id="s", retry={"maxAttempts": MAX_ATTEMPTS, "backoffMs": 1000, "maxDelayMs": 60_000}))])
    assert ok.published, ok.problems


async def test_nested_concurrent_loops_are_bounded_in_all(stack: Stack) -> None:
    """Nested loops multiply their concurrency: 100 × 100 items at once is over Temporal's in-flight limits."""
    inner = {"id": "inner", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "j", "concurrency": 100, "body": [_echo()]}
    outer = {"id": "outer", "type": "control.forEach", "items": {"$expr": "[1]"}, "itemVar": "i", "concurrency": 100, "body": [inner]}
    errors = await _refused(stack, [_step(outer)])
    assert [(e["code"], e["stepPath"], e["stepId"]) for e in errors] == [("TOO_MANY_CONCURRENT_ITEMS", "root.steps[0].body.steps[0]", "inner")]
    inner["concurrency"] = 10
    assert (await publish_definitions(stack.database, stack.registry, _tenant(), [_step(outer)])).published


async def test_the_largest_durations_publish_and_run(stack: Stack) -> None:
    """At the limits a definition publishes, and Temporal accepts the timers: a 100-year wait waits (then is cancelled)."""
    import asyncio

    from runtime_core.persistence import RunRow, WaitRow

    tenant = _tenant()
    definition = _definition(version=MAX_VERSION, steps=[
        {"id": "t", "type": "time.wait", "config": {"durationMs": MAX_DURATION_MS}},
    ])
    waiter = _definition(id="waiter", steps=[
        {"id": "e", "type": "event.wait", "config": {"eventName": "never", "correlationKey": {"$expr": "'k'"}, "timeoutMs": MAX_DURATION_MS}},
    ])
    outcome = await publish_definitions(stack.database, stack.registry, tenant, [definition, waiter])
    assert outcome.published, outcome.problems
    runs = [await stack.launcher.launch(tenant, "edge", {}), await stack.launcher.launch(tenant, "waiter", {})]
    assert runs[0].workflow_version == MAX_VERSION
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with stack.database.sessions() as session:
            open_waits = (await session.execute(select(func.count()).select_from(WaitRow).where(WaitRow.run_id.in_([r.run_id for r in runs]), WaitRow.status == "WAITING"))).scalar_one()
        if open_waits == 2:
            break
        assert asyncio.get_running_loop().time() < deadline, "the runs never opened their waits"
        await asyncio.sleep(0.1)
    for run in runs:
        await stack.launcher.cancel(tenant, run.run_id)
        with pytest.raises(Exception):  # noqa: B017 - the cancelled workflow's failure
            await asyncio.wait_for(stack.client.get_workflow_handle(run.temporal_workflow_id).result(), 60)
        async with stack.database.sessions() as session:
            row = await session.get(RunRow, run.run_id)
        assert row is not None and row.status == "CANCELED"


# ---------------------------------------------------------------------- launch (issue 10)


async def _run_rows(stack: Stack, tenant: str) -> int:
    from runtime_core.persistence import RunRow

    async with stack.database.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(RunRow).where(RunRow.tenant == tenant))).scalar_one())


async def _published(stack: Stack, documents: list[dict[str, Any]]) -> str:
    tenant = _tenant()
    outcome = await publish_definitions(stack.database, stack.registry, tenant, documents)
    assert outcome.published, outcome.problems
    return tenant


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"note": "a\x00b"}, "payload.note: contains the NUL character"),
        ({"note": "\udc80"}, "payload.note: contains a lone surrogate"),
        ({"n": float("nan")}, "payload.n: is nan"),
        ({"n": 2**64}, "payload.n: is an integer beyond 64 bits"),
        ({"deep": _nested(150)}, "nests deeper than 100 levels"),
        ({"big": "x" * (600 * 1024)}, "over the limit of 512.0 KB"),
        ({"when": object()}, "payload.when: is a object, not a JSON value"),
        (["not", "an", "object"], "the payload must be a JSON object, not list"),
    ],
)
async def test_launch_refuses_a_payload_the_runtime_cannot_store(stack: Stack, payload: Any, says: str) -> None:
    """Once a DBAPIError (NUL on PostgreSQL) or a StatementError: now a LaunchError naming the path; no run row."""
    from runtime_core.launcher import LaunchError

    tenant = await _published(stack, [_definition()])
    with pytest.raises(LaunchError) as caught:
        await stack.launcher.launch(tenant, "edge", payload)
    assert says in str(caught.value)
    assert await _run_rows(stack, tenant) == 0


@pytest.mark.parametrize(
    ("tenant", "workflow_id", "version", "says"),
    [
        (None, ["edge"], None, "the workflow id must be a non-empty string, not list"),
        (None, "", None, "the workflow id must be a non-empty string"),
        (None, "e" * 201, None, "the workflow id is 201 characters long; use at most 200"),
        ("t" * 129, "edge", None, "the tenant is 129 characters long; use at most 128"),
        ("a\x00b", "edge", None, "tenant: contains the NUL character"),
        (7, "edge", None, "the tenant must be a non-empty string, not int"),
        (None, "edge", 2**63, "got 9223372036854775808"),
        (None, "edge", 10**100, "got an integer beyond 64 bits"),
        (None, "edge", 2**31, f"from 1 to {MAX_VERSION}"),
        (None, "edge", "1", "got a str"),
        (None, "edge", True, "got a bool"),
        (None, "edge", 0, "got 0"),
    ],
)
async def test_launch_refuses_arguments_it_cannot_look_up(stack: Stack, tenant: Any, workflow_id: Any, version: Any, says: str) -> None:
    """Once StatementError (a list as workflow id) and OverflowError (a version ≥ 2^63): now LaunchError naming the field."""
    from runtime_core.launcher import LaunchError

    owner = await _published(stack, [_definition()])
    with pytest.raises(LaunchError) as caught:
        await stack.launcher.launch(owner if tenant is None else tenant, workflow_id, {}, version=version)
    assert says in str(caught.value)
    assert await _run_rows(stack, owner) == 0


@pytest.mark.parametrize("text", ["x" * 220_000, "€" * 80_000], ids=["ascii", "escaped-by-temporal"])
async def test_launch_refuses_a_run_input_over_temporals_limit(stack: Stack, text: str) -> None:
    """Once RPCError from Temporal (blob over its limit): a parent pinning children that add up to more than
    MAX_RUN_INPUT_BYTES is refused with the size and the limit, measured as Temporal receives it (JSON
    escapes "€" as 6 bytes; each definition is under MAX_DEFINITION_BYTES in UTF-8)."""
    from runtime_core.launcher import LaunchError

    kids = [_definition(id=f"kid{i}", description=text) for i in range(10)]
    parent = _definition(id="parent", steps=[{"id": f"c{i}", "type": "control.callWorkflow", "workflowId": f"kid{i}", "workflowVersion": 1} for i in range(10)])
    tenant = await _published(stack, [parent, *kids])
    with pytest.raises(LaunchError) as caught:
        await stack.launcher.launch(tenant, "parent", {})
    assert "10 called definitions" in str(caught.value) and "over the limit of 1.9 MB that Temporal accepts" in str(caught.value)
    assert await _run_rows(stack, tenant) == 0


async def test_a_run_input_within_the_limit_runs_with_its_children(stack: Stack) -> None:
    """Below the limit a run pinning large children starts, and so does every child (each gets them all again)."""
    from runtime_core.persistence import RunRow

    kids = [_definition(id=f"kid{i}", description="x" * 220_000) for i in range(4)]
    parent = _definition(id="parent", steps=[{"id": f"c{i}", "type": "control.callWorkflow", "workflowId": f"kid{i}", "workflowVersion": 1} for i in range(4)])
    tenant = await _published(stack, [parent, *kids])
    launched = await stack.launcher.launch(tenant, "parent", {})
    await stack.client.get_workflow_handle(launched.temporal_workflow_id).result()
    async with stack.database.sessions() as session:
        statuses = list((await session.execute(select(RunRow.status).where(RunRow.tenant == tenant))).scalars())
    assert statuses == ["SUCCEEDED"] * 5


async def test_launch_turns_any_payload_validation_failure_into_a_launch_error(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once `Unresolvable` (a remote $ref in payloadSchema): whatever the validator raises, launch refuses with LaunchError."""
    from runtime_core.launcher import LaunchError, _launcher

    def broken(schema: Any, instance: Any, root: str) -> list[dict[str, str]]:
        raise LookupError("Unresolvable: https://example.invalid/schema.json")

    tenant = await _published(stack, [_definition(payloadSchema={"type": "object"})])
    monkeypatch.setattr(_launcher, "schema_problems", broken)
    with pytest.raises(LaunchError, match=r"payloadSchema of workflow 'edge' version 1 could not be applied .*Unresolvable"):
        await stack.launcher.launch(tenant, "edge", {})
    assert await _run_rows(stack, tenant) == 0


# ----------------------------------------------------------------- task completion (issue 10)


async def _pending_task(stack: Stack, form_schema: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """``(tenant, run id, task id)`` of a run waiting on a human task."""
    import asyncio

    from runtime_core.persistence import TaskRow

    config: dict[str, Any] = {"taskType": "approve", "title": {"$expr": "'Approve?'"}}
    if form_schema is not None:
        config["formSchema"] = form_schema
    tenant = await _published(stack, [_step({"id": "t", "type": "human.task", "config": config})])
    launched = await stack.launcher.launch(tenant, "edge", {})
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with stack.database.sessions() as session:
            task = (await session.execute(select(TaskRow).where(TaskRow.run_id == launched.run_id))).scalar_one_or_none()
        if task is not None:
            return tenant, launched.run_id, task.task_id
        assert asyncio.get_running_loop().time() < deadline, "the task never opened"
        await asyncio.sleep(0.1)


async def _task_unchanged(stack: Stack, task_id: str) -> None:
    from runtime_core.persistence import TaskRow

    async with stack.database.sessions() as session:
        task = await session.get(TaskRow, task_id)
    assert task is not None and task.status == "PENDING" and task.response is None and task.completed_by is None


async def _finish(stack: Stack, tenant: str, run_id: str, task_id: str) -> None:
    """A good answer still completes the task and the run: the refusals changed nothing."""
    from runtime_core.contract import workflow_id_for_run
    from runtime_core.ingress import complete_task
    from runtime_core.persistence import RunRow

    await complete_task(stack.database, stack.client, tenant, task_id, {"ok": True})
    await stack.client.get_workflow_handle(workflow_id_for_run(run_id)).result()
    async with stack.database.sessions() as session:
        run = await session.get(RunRow, run_id)
    assert run is not None and run.status == "SUCCEEDED"


async def test_complete_task_refuses_a_response_the_runtime_cannot_store(stack: Stack) -> None:
    """Once a DBAPIError on PostgreSQL (NUL) and a stored-then-unsendable response on SQLite: now
    TaskResponseRejected naming the path; the task stays PENDING and nothing changed."""
    from runtime_core.ingress import TaskResponseRejected, complete_task

    tenant, run_id, task_id = await _pending_task(stack)
    responses = [({"note": "a\x00b"}, "response.note"), ({"note": "\ud800"}, "response.note"), ({"n": float("inf")}, "response.n"),
                 ({"n": -(2**70)}, "response.n"), ({"deep": _nested(120)}, "response.deep"), ({"big": "x" * (513 * 1024)}, "response"),
                 ({(1, 2): "tuple key"}, "response"), ({"s": {1, 2}}, "response.s")]
    for response, path in responses:
        with pytest.raises(TaskResponseRejected) as caught:
            await complete_task(stack.database, stack.client, tenant, task_id, response)
        assert caught.value.errors and caught.value.errors[0]["path"].startswith(path), caught.value.errors
        assert str(caught.value).startswith("the response is not acceptable: ")
    await _task_unchanged(stack, task_id)
    await _finish(stack, tenant, run_id, task_id)


async def test_complete_task_refuses_any_task_id_value(stack: Stack) -> None:
    """A task id, tenant or actor that is not a usable string is a TaskError naming the field, never a database error."""
    from runtime_core.ingress import TaskError, complete_task

    tenant, run_id, task_id = await _pending_task(stack)
    cases: list[tuple[Any, Any, Any, str]] = [
        (tenant, ["x"], None, "the task id must be a non-empty string, not list"),
        (tenant, 12, None, "the task id must be a non-empty string, not int"),
        (tenant, "", None, "the task id must be a non-empty string"),
        (tenant, "f" * 65, None, "the task id is 65 characters long; use at most 64"),
        (tenant, "a\x00b", None, "task id: contains the NUL character"),
        (tenant, "\udcff", None, "task id: contains a lone surrogate"),
        (None, task_id, None, "the tenant must be a non-empty string, not NoneType"),
        (tenant, task_id, ["ops"], "the actor must be a non-empty string, not list"),
        (tenant, task_id, "o" * 201, "the actor is 201 characters long"),
    ]
    for who, task, actor, says in cases:
        with pytest.raises(TaskError) as caught:
            await complete_task(stack.database, stack.client, who, task, {"ok": True}, admin=actor is not None, actor=actor)
        assert says in str(caught.value)
    with pytest.raises(TaskError, match="not found"):
        await complete_task(stack.database, stack.client, tenant, "0" * 32, {"ok": True})
    await _task_unchanged(stack, task_id)
    await _finish(stack, tenant, run_id, task_id)


async def test_complete_task_turns_any_form_validation_failure_into_a_task_error(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the form-schema validator raises, completion refuses with TaskError and the task stays open."""
    from runtime_core.ingress import TaskError, _tasks, complete_task

    def broken(schema: Any, instance: Any, root: str) -> list[dict[str, str]]:
        raise LookupError("Unresolvable: https://example.invalid/form.json")

    tenant, run_id, task_id = await _pending_task(stack, {"type": "object"})
    with monkeypatch.context() as patch:
        patch.setattr(_tasks, "schema_problems", broken)
        with pytest.raises(TaskError, match=r"form schema of task \w+ could not be applied .*Unresolvable"):
            await complete_task(stack.database, stack.client, tenant, task_id, {"ok": True})
    await _task_unchanged(stack, task_id)
    await _finish(stack, tenant, run_id, task_id)


# ---------------------------------------------------------------------------- wfr (issue 10)

CLOSED_PORT = "127.0.0.1:1"  # nothing listens on port 1: connecting is refused at once


def invoke_wfr(args: list[str], env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    """Run `wfr` in-process through its real entry point (click's CliRunner), in a thread of its own
    (its asyncio.run must not touch the test session's event loop). Returns ``(exit code, stdout, stderr)``."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from click.testing import CliRunner

    from runtime_bootstrap.cli import wfr

    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("WFR_") and k != "WFR_TEST_POSTGRES_URL"}
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, wfr, args, env={**cleared, **(env or {})}, catch_exceptions=False).result()
    return result.exit_code, result.stdout, result.stderr


def assert_one_error_line(code: int, stderr: str, expected_code: int, says: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == expected_code, (code, stderr)
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    assert says in lines[0], lines[0]


def _cli_cases(tmp: str) -> list[tuple[list[str], dict[str, str | None], int, str]]:
    external = {"WFR_TEMPORAL_ADDRESS": CLOSED_PORT, "WFR_DATABASE_URL": f"sqlite:///{tmp}/cli.db"}
    return [
        (["launch", "wf", "--payload", "{bad"], external, 1, "--payload is not JSON: Expecting property name"),
        (["launch", "wf", "--payload", "@/nonexistent/p.json"], external, 1, "/nonexistent/p.json: [Errno 2] No such file"),
        (["launch", "wf", "--payload", f"@{tmp}/binary.json"], external, 1, "is not UTF-8 text"),
        (["launch", "wf", "--payload", "1" * 5000], external, 1, "has an integer of more than 4,300 digits"),
        (["launch", "wf", "--payload", "[" * 100_000], external, 1, "--payload nests too deeply to be read"),
        (["launch", "wf", "--payload", "[1]"], external, 1, "--payload must be a JSON object, not list"),
        (["launch", "wf", "--payload", '{"a": "\\u0000"}'], external, 1, "payload.a: contains the NUL character"),
        (["launch", "wf", "--payload", '{"a": NaN}'], external, 1, "payload.a: is nan"),
        (["launch", "wf", "--tenant", "a\x00b"], external, 1, "--tenant: contains the NUL character"),
        (["launch", "wf", "--version", "abc"], external, 2, "Invalid value for '--version'"),
        (["launch", "wf", "--version", str(2**32)], external, 2, "is not in the range 1<=x<=2147483647"),
        (["launch", "wf"], external, 1, "cannot reach Temporal at 127.0.0.1:1"),
        (["launch", "wf"], {}, 1, "no stack configured"),
        (["events", "send", ""], external, 1, "EVENT_NAME must not be empty"),
        (["events", "send", "\udcff"], external, 1, "EVENT_NAME: contains a lone surrogate"),
        (["events", "send", "paid", "--payload", "{bad"], external, 1, "--payload is not JSON"),
        (["events", "send", "paid"], external, 1, "WFR_TEMPORAL_ADDRESS"),
        (["tasks", "complete", "t1", "--response", "{bad"], external, 1, "--response is not JSON"),
        (["tasks", "complete", "t1", "--response", '{"x": 1e999}'], external, 1, "response.x: is inf"),
        (["tasks", "complete", "t1"], external, 2, "Missing option '--response'"),
        (["tasks", "complete", "t1", "--response", "{}"], external, 1, "WFR_TEMPORAL_ADDRESS"),
        (["tasks", "register", "approve", f"{tmp}/binary.json"], external, 1, "is not UTF-8 text"),
        (["tasks", "register", "approve", f"{tmp}/list.json"], external, 1, "must be a JSON object, not list"),
        (["runs", "cancel", "r1"], external, 1, "WFR_TEMPORAL_ADDRESS"),
        (["runs", "show", "r1"], {"WFR_DATABASE_URL": "bogus://"}, 1, "WFR_DATABASE_URL is not a usable database URL"),
        (["runs", "show", "r1"], {"WFR_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}, 1, "cannot use the database postgresql+asyncpg://u@127.0.0.1:1/x (WFR_DATABASE_URL)"),
        (["runs", "show", "r1"], {"WFR_DATABASE_URL": "sqlite:////nonexistent/dir/x.db"}, 1, "(WFR_DATABASE_URL): OperationalError: unable to open database file"),
        (["runs", "show", "r1"], {"WFR_LOG_LEVEL": "LOUD"}, 1, "WFR_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        (["db", "upgrade", "--url", "nonsense"], {}, 1, "--url is not a usable database URL"),
        (["publish", f"{tmp}/binary.json"], external, 1, "is not UTF-8 text"),
        (["publish", "/nonexistent/w.json"], external, 2, "does not exist"),
        (["scenario", "run", "/nonexistent/s.json"], {}, 1, "/nonexistent/s.json"),
        (["nope"], {}, 2, "No such command 'nope'"),
    ]


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "binary.json").write_bytes(b"\xff\xfe{}")
    (folder / "list.json").write_text("[1, 2]")
    return str(folder)


def test_malformed_wfr_invocations_fail_with_one_line(cli_files: str) -> None:
    """Once 9 of 16 printed a traceback: every malformed invocation is one `Error:` line and a non-zero exit."""
    for args, env, expected_code, says in _cli_cases(cli_files):
        code, _stdout, stderr = invoke_wfr(args, env)
        assert_one_error_line(code, stderr, expected_code, says)


def test_an_unexpected_error_is_one_line_and_a_traceback_with_v(cli_files: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last resort in `wfr`: an exception nobody expected is one line; `wfr -v` adds its traceback."""
    from runtime_core.operations import Operations

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(Operations, "get_run", broken)
    env: dict[str, str | None] = {"WFR_DATABASE_URL": f"sqlite:///{cli_files}/unexpected.db"}
    code, _stdout, stderr = invoke_wfr(["runs", "show", "r1"], env)
    assert_one_error_line(code, stderr, 1, "unexpected KeyError: 'boom' (run `wfr -v …` to see the traceback)")
    code, _stdout, stderr = invoke_wfr(["-v", "runs", "show", "r1"], env)
    assert code == 1 and "Traceback (most recent call last)" in stderr
    assert stderr.strip().splitlines()[-1] == "Error: unexpected KeyError: 'boom'"


def test_publish_problems_end_with_one_error_line(cli_files: str) -> None:
    """`wfr publish` lists each problem of a refused file, then one `Error:` line; never a traceback."""
    from pathlib import Path

    path = Path(cli_files) / "hostile.json"
    path.write_text('{"id": ["x"], "version": 1e400, "name": "\\ud800", "steps": [{"id": "a", "type": "time.wait", "config": {"durationMs": 100000000000000000}}]}')
    code, _stdout, stderr = invoke_wfr(["publish", str(path)], {"WFR_DATABASE_URL": f"sqlite:///{cli_files}/publish.db"})
    lines = stderr.strip().splitlines()
    assert code == 1 and "Traceback" not in stderr
    assert lines[-1] == "Error: nothing was published" and all(line.startswith("error: ") for line in lines[:-1]) and lines[:-1]


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["launch", "wf", "--payload", "{bad"], {"WFR_TEMPORAL_ADDRESS": CLOSED_PORT}, "--payload is not JSON"),
        (["events", "send", ""], {"WFR_TEMPORAL_ADDRESS": CLOSED_PORT}, "EVENT_NAME must not be empty"),
        (["launch", "wf"], {"WFR_TEMPORAL_ADDRESS": CLOSED_PORT}, "WFR_TEMPORAL_ADDRESS"),
        (["db", "upgrade", "--url", "postgresql://u@127.0.0.1:1/x"], {}, "cannot use the database"),
    ],
)
def test_wfr_process_prints_one_line(args: list[str], env: dict[str, str], says: str, tmp_path: Any) -> None:
    """The same through the installed console script, as users run it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    clean["WFR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'p.db'}"
    result = subprocess.run([str(Path(sys.executable).with_name("wfr")), *args], capture_output=True, text=True, timeout=120, env={**clean, **env})
    assert_one_error_line(result.returncode, result.stderr, 1, says)
