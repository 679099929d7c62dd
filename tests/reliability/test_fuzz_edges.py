"""Fuzzing the edges: publish, launch, task completion and `wfr` refuse hostile input cleanly.

Issue 10 found exceptions escaping each edge by fuzzing; these tests keep them out. Inputs come
from hypothesis, derandomized (the same cases on every run, so CI is stable), and go through the
real stack (Temporal dev server, SQLite and PostgreSQL). Every test checks that

* nothing raises but the documented refusal (`PublishOutcome` problems, `LaunchError`,
  `TaskError`/`TaskResponseRejected`, one `Error:` line of `wfr`);
* every refusal carries a reason (a code and a message, storable and printable);
* nothing is half-written (no definition row after a refused publish, no run row after a refused
  launch, the task still PENDING and unanswered after refused completions);

and prints one summary line (cases tried, refusals, outcomes) that docs/reliability.md quotes.
Only the fixtures of tests/conftest.py are used.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from runtime_bootstrap._stack import Stack
from runtime_core.values import ValueProblem, check_value

ROOT = Path(__file__).resolve().parents[2]

DEFINITIONS = 1500  # per kind (random values, mutations of valid definitions): 3,000 per backend
PAYLOADS = 800
LAUNCH_ARGUMENTS = 300
RESPONSES = 300
TASK_IDS = 100
ARGVS = 400


def _collect(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same ones on every run (derandomized, no example database)."""
    examples: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, phases=[Phase.generate], deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example: Any) -> None:
        examples.append(example)

    draw()
    assert len(examples) >= count * 0.95, f"hypothesis produced only {len(examples)} of {count} cases"
    return examples


def _summary(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[fuzz] {line}")


# ------------------------------------------------------------------------------ strategies


def _nest(depth: int) -> Any:
    value: Any = "bottom"
    for index in range(depth):
        value = [value] if index % 2 else {"n": value}
    return value


#: Strings that broke or could break an edge: NUL (PostgreSQL), lone surrogates (UTF-8), longer
#: than a column, large, look-alikes of DSL syntax.
ODD_STRINGS = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\udcff\udcfe", "é", "😀", "\u202eevil", "null", "{", "$expr", "$secret", "root.steps[0]",
    "a" * 129, "a" * 201, "a" * 501, "a" * 2001, "x" * 70_000, "€" * 100_000, "x" * 600_000, "1e400", "NaN", "-0", "0x10",
])
HUGE_INTS = st.one_of(
    st.sampled_from([2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**17, 10**100]),
    st.sampled_from([4400, 5000, -4400]).map(lambda digits: 10 ** abs(digits) * (1 if digits > 0 else -1)),  # beyond int-to-str's 4,300 digits
)
TEXT = st.one_of(st.text(max_size=12), st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3), ODD_STRINGS)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 3), HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
)
KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["id", "version", "name", "steps", "type", "config", "$expr", "$secret", "then", "body", "retry", "\x00", "\ud800"]))
JSON_VALUES = st.one_of(
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=16),
    st.integers(90, 160).map(_nest),
    st.builds(set, st.lists(st.integers(), max_size=2)), st.builds(tuple, st.lists(st.integers(), max_size=2)),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
)


def _valid_definitions() -> list[dict[str, Any]]:
    """Published-style definitions to mutate: the examples, the own scenarios' definitions, and some with every limit."""
    found: list[dict[str, Any]] = []
    for path in sorted((ROOT / "docs" / "examples").glob("*.json")):
        if not path.name.endswith(".payload.json"):
            found.append(json.loads(path.read_text()))
    for path in sorted((ROOT / "tests" / "scenarios").glob("*.json")):
        found.extend(json.loads(path.read_text()).get("definitions", []))
    found.append({"id": "limits", "version": 2**31 - 1, "name": "n" * 500, "trigger": {"type": "event", "eventName": "e" * 200}, "steps": [
        {"id": "w", "type": "time.wait", "config": {"durationMs": 3_155_760_000_000}},
        {"id": "a", "type": "action.call", "config": {"actionId": "core.echo", "version": 1}, "retry": {"maxAttempts": 100, "backoffMs": 1000, "backoffMultiplier": 10, "maxDelayMs": 3_155_760_000_000}},
        {"id": "l", "type": "control.forEach", "items": {"$expr": "[1, 2]"}, "itemVar": "i", "concurrency": 100, "body": [
            {"id": "e", "type": "event.wait", "config": {"eventName": "x", "correlationKey": {"$expr": "'k'"}, "timeoutMs": 1}}]},
    ]})
    return found


BASES = _valid_definitions()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


@st.composite
def mutated_definitions(draw: st.DrawFn) -> Any:
    """A valid definition with one to three parts replaced, removed or added."""
    document: Any = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["retype", "retype", "replace", "replace", "delete", "add"]))
        if not path:
            document = draw(JSON_VALUES) if operation == "replace" else document
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if operation == "retype":  # a value of the same type: limits, odd text
            current = parent[last]
            if isinstance(current, bool) or current is None:
                parent[last] = draw(SCALARS)
            elif isinstance(current, int):
                parent[last] = draw(st.one_of(st.integers(-2, 200), HUGE_INTS, st.sampled_from([3_155_760_000_000, 3_155_760_000_001, 100, 101, 1000, 1001])))
            elif isinstance(current, float):
                parent[last] = draw(st.floats(allow_nan=True, allow_infinity=True))
            elif isinstance(current, str):
                parent[last] = draw(st.one_of(TEXT, st.from_regex(r"[a-z0-9][a-z0-9._-]{0,8}", fullmatch=True), st.integers(150, 2200).map(lambda n: "s" * n)))
            else:
                parent[last] = draw(JSON_VALUES)
        elif operation == "replace":
            parent[last] = draw(st.one_of(JSON_VALUES, HUGE_INTS, ODD_STRINGS))
        elif operation == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return document


RANDOM_DEFINITIONS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"id": st.one_of(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,8}", fullmatch=True), TEXT, JSON_VALUES), "version": st.one_of(st.integers(1, 3), HUGE_INTS, SCALARS),
         "name": st.one_of(TEXT, SCALARS), "steps": st.one_of(st.lists(st.dictionaries(KEYS, JSON_VALUES, max_size=4), max_size=3), JSON_VALUES)},
        optional={"payloadSchema": JSON_VALUES, "trigger": JSON_VALUES, "description": TEXT},
    ),
)


_CASES: dict[str, list[Any]] = {}


def _cases() -> dict[str, list[Any]]:
    """Every case of the database tests, drawn once per session in a fixed order, so that both
    backends (and any selection of these tests) get exactly the same inputs."""
    if not _CASES:
        _CASES["definitions"] = _collect(RANDOM_DEFINITIONS, DEFINITIONS) + _collect(mutated_definitions(), DEFINITIONS)
        _CASES["tenants"] = _collect(st.one_of(ODD_STRINGS, JSON_VALUES), 100)
        _CASES["payloads"] = _collect(st.one_of(JSON_VALUES, st.dictionaries(KEYS, JSON_VALUES, max_size=5)), PAYLOADS)
        _CASES["arguments"] = _collect(st.tuples(
            st.one_of(st.just(None), ODD_STRINGS, JSON_VALUES), st.one_of(st.sampled_from(["open", "typed"]), ODD_STRINGS, JSON_VALUES),
            st.one_of(st.none(), st.integers(0, 3), HUGE_INTS, SCALARS),
        ), LAUNCH_ARGUMENTS)
        _CASES["responses"] = _collect(st.one_of(JSON_VALUES, st.dictionaries(KEYS, JSON_VALUES, max_size=4)), RESPONSES)
        _CASES["task ids"] = _collect(st.one_of(ODD_STRINGS, JSON_VALUES, st.text(max_size=70)), TASK_IDS)
    return _CASES


# ---------------------------------------------------------------------------------- helpers


def _assert_reason(problem: dict[str, Any]) -> None:
    """A refusal's problem: the documented keys, a code and a message, storable and printable."""
    assert {"severity", "stepPath", "stepId", "code", "message"} <= set(problem), problem
    assert isinstance(problem["code"], str) and problem["code"] and isinstance(problem["message"], str) and problem["message"], problem
    check_value(problem, "problem")  # no NUL, no lone surrogate, JSON
    json.dumps(problem)


def _assert_message(err: BaseException) -> None:
    message = str(err)
    assert message.strip(), f"{type(err).__name__} without a message"
    try:
        check_value(message, "message")
    except ValueProblem as problem:  # pragma: no cover - the assertion explains
        raise AssertionError(f"unprintable refusal message: {problem}") from None


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__}>"
    return text[:300]


# ---------------------------------------------------------------------------------- publish


async def test_fuzz_publish(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """2,000 definitions per backend (random JSON, mutations of valid ones, hostile tenants): each is
    published or refused with problems that carry a reason; a refused one leaves no row."""
    from runtime_core.persistence import DefinitionVersion, WorkflowDefinitionRow
    from runtime_core.publishing import publish_definitions

    cases = await asyncio.to_thread(_cases)
    documents, tenants_hostile = cases["definitions"], cases["tenants"]
    prefix = f"fz{uuid.uuid4().hex[:6]}"
    published: set[str] = set()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for index, document in enumerate(documents):
        tenant = f"{prefix}-{index}"
        try:
            outcome = await publish_definitions(stack.database, stack.registry, tenant, [document])
            if outcome.published:
                published.add(tenant)
                outcomes["published"] += 1
            else:
                assert outcome.errors and not outcome.versions
                for problem in outcome.problems:
                    _assert_reason(problem)
                outcomes[f"refused:{outcome.errors[0]['code']}"] += 1
        except Exception as err:  # collected, so one run reports every escape
            failures.append(f"{type(err).__name__}: {err!s:.200} for {_short(document)}")
    for tenant in tenants_hostile:
        try:
            outcome = await publish_definitions(stack.database, stack.registry, tenant, [BASES[0]])
            assert not outcome.published or (isinstance(tenant, str) and tenant.strip())
            for problem in outcome.problems:
                _assert_reason(problem)
            outcomes["hostile tenant " + ("published" if outcome.published else "refused")] += 1
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err!s:.200} for tenant {_short(tenant)}")
    async with stack.database.sessions() as session:
        stored = {row[0] for row in await session.execute(select(DefinitionVersion.tenant).where(DefinitionVersion.tenant.like(f"{prefix}-%")).distinct())}
        heads = {row[0] for row in await session.execute(select(WorkflowDefinitionRow.tenant).where(WorkflowDefinitionRow.tenant.like(f"{prefix}-%")).distinct())}
    assert not failures, f"{len(failures)} exceptions escaped publish:\n" + "\n".join(failures[:20])
    assert stored == published and heads == published, "a refused publish left rows behind (or a published one has none)"
    refused = sum(n for k, n in outcomes.items() if k.startswith("refused:"))
    codes = Counter({k.split(":", 1)[1]: n for k, n in outcomes.items() if k.startswith("refused:")})
    _summary(capsys, f"publish [{stack.database.dialect}]: {len(documents)} definitions + {len(tenants_hostile)} hostile tenants tried; "
                     f"{outcomes['published']} published, {refused} refused (first codes: {dict(codes.most_common(6))}), "
                     f"hostile tenants refused {outcomes['hostile tenant refused']}; 0 exceptions, 0 rows left by a refusal")


# ----------------------------------------------------------------------------------- launch


async def _wait_all_ended(stack: Stack, tenant: str, expected: int, timeout: float = 120) -> Counter[str]:
    from runtime_core.persistence import RunRow

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with stack.database.sessions() as session:
            statuses = Counter(row[0] for row in await session.execute(select(RunRow.status).where(RunRow.tenant == tenant)))
        if sum(statuses.values()) == expected and not statuses.keys() & {"RUNNING", "WAITING"}:
            return statuses
        assert asyncio.get_running_loop().time() < deadline, f"runs did not end: {statuses}"
        await asyncio.sleep(0.2)


async def test_fuzz_launch(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """500 payloads and 200 argument sets per backend: each launch starts a run that succeeds, or is a
    LaunchError with a message and no run row."""
    from runtime_core.launcher import LaunchError
    from runtime_core.publishing import publish_definitions

    cases = await asyncio.to_thread(_cases)
    payloads, arguments = cases["payloads"], cases["arguments"]
    tenant = f"fz-{uuid.uuid4().hex[:8]}"
    open_definition = {"id": "open", "version": 1, "name": "open", "steps": [{"id": "r", "type": "control.return"}]}
    typed = {"id": "typed", "version": 1, "name": "typed", "steps": [{"id": "r", "type": "control.return"}],
             "payloadSchema": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}, "note": {"type": "string", "maxLength": 20}}}}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [open_definition, typed])).published
    started = 0
    refusals: Counter[str] = Counter()
    failures: list[str] = []

    async def attempt(who: Any, workflow: Any, payload: Any, version: Any) -> None:
        nonlocal started
        try:
            await stack.launcher.launch(who, workflow, payload, version=version)
            assert who == tenant
            started += 1
        except LaunchError as err:
            _assert_message(err)
            for problem in err.problems:
                check_value(problem, "problem")
            refusals[str(err).split(":", 1)[0][:40]] += 1
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err!s:.200} for {_short((who, workflow, version, payload))}")

    for index, payload in enumerate(payloads):
        await attempt(tenant, "open" if index % 2 else "typed", payload, None)
    for who, workflow, version in arguments:
        await attempt(tenant if who is None else who, workflow, {"n": 1}, version)
    assert not failures, f"{len(failures)} exceptions escaped launch:\n" + "\n".join(failures[:20])
    statuses = await _wait_all_ended(stack, tenant, started)
    assert statuses == Counter({"SUCCEEDED": started}), statuses
    _summary(capsys, f"launch [{stack.database.dialect}]: {len(payloads)} payloads + {len(arguments)} argument sets tried; {started} runs started "
                     f"(all SUCCEEDED), {sum(refusals.values())} refused with LaunchError (no run row); 0 other exceptions")


# ------------------------------------------------------------------------------------ tasks


async def _open_task(stack: Stack, tenant: str) -> tuple[str, str]:
    from runtime_core.persistence import TaskRow

    launched = await stack.launcher.launch(tenant, "ask", {})
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with stack.database.sessions() as session:
            task = (await session.execute(select(TaskRow).where(TaskRow.run_id == launched.run_id))).scalar_one_or_none()
        if task is not None:
            return launched.run_id, task.task_id
        assert asyncio.get_running_loop().time() < deadline, "the task never opened"
        await asyncio.sleep(0.1)


async def test_fuzz_task_responses(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """200 responses and 50 task ids per backend against a real pending task: each is refused with a
    reason and the task stays PENDING, unanswered; then a good answer still completes the run."""
    from runtime_core.ingress import TaskError, TaskResponseRejected, complete_task
    from runtime_core.persistence import RunRow, TaskRow
    from runtime_core.publishing import publish_definitions

    cases = await asyncio.to_thread(_cases)
    responses, task_ids = cases["responses"], cases["task ids"]
    tenant = f"fz-{uuid.uuid4().hex[:8]}"
    form = {"type": "object", "required": ["answer"], "properties": {"answer": {"const": "yes, really"}}}
    ask = {"id": "ask", "version": 1, "name": "ask", "steps": [{"id": "t", "type": "human.task", "config": {"taskType": "approve", "title": {"$expr": "'?'"}, "formSchema": form}}]}
    assert (await publish_definitions(stack.database, stack.registry, tenant, [ask])).published
    run_id, task_id = await _open_task(stack, tenant)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []

    async def attempt(task: Any, response: Any) -> None:
        try:
            await complete_task(stack.database, stack.client, tenant, task, response)
            failures.append(f"accepted {_short(response)} for task {_short(task)}")
        except TaskResponseRejected as err:
            _assert_message(err)
            assert err.errors and all(e["path"] and e["message"] for e in err.errors)
            outcomes["TaskResponseRejected"] += 1
        except TaskError as err:
            _assert_message(err)
            outcomes["TaskError"] += 1
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err!s:.200} for {_short((task, response))}")

    for response in responses:
        await attempt(task_id, response)
    for task in task_ids:
        await attempt(task, {"answer": "yes, really"})
    assert not failures, f"{len(failures)} completions did not refuse cleanly:\n" + "\n".join(failures[:20])
    async with stack.database.sessions() as session:
        task_row = await session.get(TaskRow, task_id)
    assert task_row is not None and task_row.status == "PENDING" and task_row.response is None and task_row.completed_at is None
    await complete_task(stack.database, stack.client, tenant, task_id, {"answer": "yes, really"})
    await stack.client.get_workflow_handle(f"workflow-runtime-v2:run:{run_id}").result()
    async with stack.database.sessions() as session:
        run = await session.get(RunRow, run_id)
    assert run is not None and run.status == "SUCCEEDED"
    _summary(capsys, f"task completion [{stack.database.dialect}]: {len(responses)} responses + {len(task_ids)} task ids tried; "
                     f"{outcomes['TaskResponseRejected']} TaskResponseRejected, {outcomes['TaskError']} TaskError; task stayed PENDING; 0 other exceptions")


# -------------------------------------------------------------------------------------- wfr


FLAG = "<flag: no value>"


def _cli_strategy(files: list[str]) -> st.SearchStrategy[list[str]]:
    """Argument vectors of `wfr`: real commands with hostile values, and random tokens."""
    def dumps(value: Any) -> str:
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return repr(value)

    word = st.one_of(TEXT, st.sampled_from(["wf", "greeting", "t1", "r1", "approve", "-", "--", "--help", "-v"]))
    json_text = st.one_of(JSON_VALUES.map(dumps), TEXT, st.sampled_from(files).map(lambda f: "@" + f),
                          st.sampled_from(['{"a": "\\u0000"}', '{"a": "\\ud800"}', '{"n": 1e999}', "[" * 5000, "1" * 5000, "{bad", "NaN"]))
    urls = st.sampled_from(["nonsense", "bogus://", "postgresql://u@127.0.0.1:1/x", "sqlite:////nonexistent/dir/x.db", "sqlite://", ""])

    def options(*pairs: tuple[str, st.SearchStrategy[str]]) -> st.SearchStrategy[list[str]]:
        return st.lists(st.sampled_from(pairs).flatmap(lambda p: p[1].map(lambda v, name=p[0]: [name, v])), max_size=3).map(lambda xs: [t for x in xs for t in x])

    tenant = ("--tenant", word)
    commands = st.one_of(
        st.tuples(st.just(["launch"]), word.map(lambda w: [w]), options(("--payload", json_text), ("--version", st.one_of(word, st.integers().map(str))), tenant, ("--no-wait", st.just(FLAG)))),
        st.tuples(st.just(["events", "send"]), word.map(lambda w: [w]), options(("--payload", json_text), ("--key", word), ("--event-id", word), tenant)),
        st.tuples(st.just(["tasks", "complete"]), word.map(lambda w: [w]), options(("--response", json_text), ("--admin", word), tenant)),
        st.tuples(st.just(["tasks", "register"]), st.tuples(word, st.sampled_from(files)).map(list), options(tenant)),
        st.tuples(st.just(["runs"]), st.tuples(st.sampled_from(["show", "cancel", "steps", "live", "export", "resume", "reconcile"]), word).map(list),
                  options(tenant, ("--json", st.just(FLAG)), ("--reason", word), ("--actor", word))),
        st.tuples(st.just(["runs", "list"]), st.just([]), options(("--status", word), ("--workflow", word), ("--since", word), ("--until", word), ("--cursor", word),
                                                                  ("--limit", word), ("--stuck", st.just(FLAG)), tenant)),
        st.tuples(st.just(["runs", "cancel"]), st.lists(word, max_size=2), options(("--filter", st.just(FLAG)), ("--status", word), ("--dry-run", st.just(FLAG)), tenant)),
        st.tuples(st.just(["runs", "replay"]), word.map(lambda w: [w]), options(("--payload", json_text), ("--reason", word), tenant)),
        st.tuples(st.sampled_from([["tasks", "list"], ["events", "list"], ["definitions", "list"], ["redaction", "list"], ["tokens", "list"]]), st.just([]),
                  options(("--status", word), ("--cursor", word), ("--name", word), tenant)),
        st.tuples(st.sampled_from([["tasks", "show"], ["events", "show"], ["definitions", "show"], ["tokens", "revoke"], ["redaction", "remove"]]), word.map(lambda w: [w]),
                  options(("--version", word), tenant, ("--json", st.just(FLAG)))),
        st.tuples(st.just(["tokens", "create"]), st.just([]), options(("--role", st.one_of(word, st.sampled_from(["viewer", "admin"]))), ("--name", word), tenant)),
        st.tuples(st.just(["redaction", "add"]), st.just([]), options(("--path", word), ("--key", word), tenant)),
        st.tuples(st.just(["publish"]), st.lists(st.sampled_from(files), min_size=1, max_size=3), options(tenant)),
        st.tuples(st.just(["db", "upgrade"]), st.just([]), options(("--url", urls))),
        st.tuples(st.just(["schema"]), st.just([]), st.just([])),
        st.tuples(st.just([]), st.lists(word, max_size=4), st.just([])),
    )
    return commands.map(lambda parts: [t for t in parts[0] + parts[1] + parts[2] if t != FLAG])


def test_fuzz_wfr_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """220 `wfr` argument vectors (hostile values, files, settings) against an unreachable Temporal and a
    SQLite file: each exits 0, or non-zero with its last stderr line `Error: …` (the only line, except
    for publish and task responses, which list their problems first), never a traceback."""
    from concurrent.futures import ThreadPoolExecutor

    from click.testing import CliRunner

    from runtime_bootstrap.cli import wfr

    contents: dict[str, bytes] = {
        "binary.json": b"\xff\xfe\x00", "empty.json": b"", "list.json": b"[1, 2]", "bad.json": b"{bad", "digits.json": b"1" * 5000, "deep.json": b"[" * 5000,
        "nul.json": json.dumps({"type": "object", "title": "a\x00b"}).encode(), "schema.json": json.dumps({"type": "object"}).encode(),
        "greeting.json": (ROOT / "docs" / "examples" / "greeting.json").read_bytes(),
        "hostile.json": b'{"id": ["x"], "version": 1e400, "name": "\\ud800", "steps": [{"id": "a", "type": "time.wait", "config": {"durationMs": 1e17}}]}',
    }
    files = []
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
        files.append(str(tmp_path / name))
    files.append(str(tmp_path / "missing.json"))
    argvs = _collect(_cli_strategy(files), ARGVS)
    env: dict[str, str | None] = {"WFR_TEMPORAL_ADDRESS": "127.0.0.1:1", "WFR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "WFR_HOME": str(tmp_path / "home")}
    exits: Counter[int] = Counter()
    failures: list[str] = []
    runner = CliRunner()
    with ThreadPoolExecutor(1) as pool:  # asyncio.run inside wfr must not touch the test session's event loop
        assert pool.submit(runner.invoke, wfr, ["db", "upgrade"], env=env).result().exit_code == 0  # the database commands get past the schema
        for argv in argvs:
            result = pool.submit(runner.invoke, wfr, argv, env=env, catch_exceptions=True).result()
            exits[result.exit_code] += 1
            lines = result.stderr.strip().splitlines()
            # these print each problem of a refused input before their Error: line
            listed = argv[:1] == ["publish"] or argv[:2] in (["tasks", "complete"], ["runs", "list"], ["runs", "cancel"], ["runs", "replay"], ["tasks", "list"],
                                                             ["events", "list"], ["tokens", "create"], ["redaction", "add"])
            problem = None
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                problem = f"raised {type(result.exception).__name__}: {result.exception}"
            elif "Traceback" in result.stderr + result.stdout:
                problem = "printed a traceback"
            elif result.exit_code not in (0, 1, 2):
                problem = f"exit code {result.exit_code}"
            elif result.exit_code != 0 and not (lines and lines[-1].startswith("Error: ") and len(lines[-1]) > len("Error: ")):
                problem = f"no final Error: line ({lines[-1:]})"
            elif result.exit_code != 0 and len(lines) != 1 and not listed:
                problem = f"{len(lines)} lines on stderr"
            if problem:
                failures.append(f"{_short(argv)}: {problem}")
    assert not failures, f"{len(failures)} wfr invocations did not fail cleanly:\n" + "\n".join(failures[:20])
    _summary(capsys, f"wfr: {len(argvs)} argument vectors tried; exit codes {dict(sorted(exits.items()))}; every failure one Error: line, 0 tracebacks")
