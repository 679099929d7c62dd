"""`wfr` over the operations layer against a running `wfr dev`: every command's happy path and `--json`, and its expected failures.

One `wfr dev` serves the module. Commands run through the real entry point in-process (click's
CliRunner, in a thread of their own so that their `asyncio.run` keeps off the session's loop),
which is what makes the module fast; the token commands, whose output contract is about a real
process's stdout, run as `wfr` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runtime_bootstrap._table import cell, duration, table

T = TypeVar("T")
WFR = str(Path(sys.executable).with_name("wfr"))

ECHO = {"id": "echo", "version": 1, "name": "Echo", "payloadSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "steps": [{"id": "say", "name": "Say it", "type": "action.call", "config": {"actionId": "core.echo", "version": 1,
                   "inputMapping": {"n": {"$expr": "payload.n"}, "card": {"$expr": "payload.card"}}, "saveAs": "vars.said"}}]}
WAIT = {"id": "wait", "version": 1, "name": "Wait", "steps": [
    {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.key"}, "assign": {"vars.got": {"$expr": "vars.event"}}}}]}
ASK = {"id": "ask", "version": 1, "name": "Ask", "steps": [{"id": "t", "type": "human.task", "config": {
    "taskType": "approve", "title": {"$expr": "'Approve ' & payload.what"}, "contextData": {"what": {"$expr": "payload.what"}},
    "formSchema": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}]}
FLAKY = {"id": "flaky", "version": 1, "name": "Flaky", "steps": [
    {"id": "count", "type": "action.call", "config": {"actionId": "data.increment", "version": 1, "inputMapping": {"key": {"$expr": "'flaky-' & $string(payload.n)"}}}},
    {"id": "boom", "type": "action.call", "config": {"actionId": "core.fail", "version": 1, "inputMapping": {"succeedOnAttempt": 2, "message": "first attempt fails"}}}]}


# ------------------------------------------------------------------------------------ harness


def _in_thread(fn: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def ok(self) -> Result:
        assert self.code == 0, (self.code, self.stdout, self.stderr)
        return self


@dataclass
class Dev:
    """The running `wfr dev` and how to reach it."""

    env: dict[str, str]
    home: Path
    files: Path

    def run(self, *args: str, **env: str | None) -> Result:
        """`wfr ARGS` in-process, with the stack's settings (``env`` overrides them; None unsets)."""
        from click.testing import CliRunner

        from runtime_bootstrap.cli import wfr

        cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("WFR_") and k != "WFR_TEST_POSTGRES_URL"}
        result = _in_thread(lambda: CliRunner().invoke(wfr, list(args), env={**cleared, **self.env, **env}, catch_exceptions=False))
        return Result(result.exit_code, result.stdout, result.stderr)

    def process(self, *args: str, **env: str) -> Result:
        """`wfr ARGS` as a process of its own."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
        done = subprocess.run([WFR, *args], capture_output=True, text=True, timeout=120, env={**clean, **env})
        return Result(done.returncode, done.stdout, done.stderr)

    def launch(self, workflow: str, payload: dict[str, Any], tenant: str = "default") -> str:
        launched = self.run("launch", workflow, "--payload", json.dumps(payload), "--no-wait", "--tenant", tenant).ok()
        return launched.stdout.split()[2]

    def until(self, run_id: str, statuses: tuple[str, ...], tenant: str = "default", timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.run("runs", "show", run_id, "--json", "--tenant", tenant).ok().json
            if shown["status"] in statuses or time.monotonic() > deadline:
                assert shown["status"] in statuses, shown
                return shown  # type: ignore[no-any-return]
            time.sleep(0.1)

    def task_of(self, run_id: str, tenant: str = "default") -> str:
        for _ in range(100):
            items = self.run("tasks", "list", "--run", run_id, "--json", "--tenant", tenant).ok().json["items"]
            if items:
                return items[0]["taskId"]  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} opened no task")

    def database(self, use: Callable[[Any], Any]) -> Any:
        """Run ``use(database)`` on the stack's database (a coroutine function), in a thread."""
        from runtime_core.persistence import Database

        async def go() -> Any:
            database = Database(self.env["WFR_DATABASE_URL"])
            try:
                return await use(database)
            finally:
                await database.dispose()

        return _in_thread(lambda: asyncio.run(go()))

    def temporal(self, use: Callable[[Any], Any]) -> Any:
        """Run ``use(client)`` with a Temporal client of the stack, in a thread."""
        from temporalio.client import Client

        async def go() -> Any:
            return await use(await Client.connect(self.env["WFR_TEMPORAL_ADDRESS"]))

        return _in_thread(lambda: asyncio.run(go()))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """`wfr dev` (Temporal dev server, SQLite, worker) for the module, with the test workflows published."""
    from runtime_bootstrap._devserver import free_port

    folder = tmp_path_factory.mktemp("cli-ops")
    home = folder / "home"
    port, ui_port = free_port(), free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    proc = subprocess.Popen([WFR, "dev", "--home", str(home), "--port", str(port), "--ui-port", str(ui_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean)
    assert proc.stdout is not None
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("Ctrl-C"):
                break
        else:
            raise AssertionError("wfr dev did not start:\n" + "".join(seen))
        stack = Dev(env={"WFR_TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "WFR_DATABASE_URL": f"sqlite:///{home / 'wfr.db'}"}, home=home, files=folder)
        paths = []
        for definition in (ECHO, WAIT, ASK, FLAKY):
            path = folder / f"{definition['id']}.json"
            path.write_text(json.dumps(definition))
            paths.append(str(path))
        for tenant in ("default", "other"):
            stack.run("publish", *paths, "--tenant", tenant).ok()
        yield stack
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _one_error(result: Result, code: int, says: str, *, listed: int = 0) -> None:
    """Exit ``code``; stderr is ``listed`` problem lines, then one ``Error:`` line containing ``says``; no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == listed + 1 and lines[-1].startswith("Error: "), result.stderr
    assert all(not line.startswith("Error:") for line in lines[:-1])
    assert says in lines[-1], lines[-1]


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


# -------------------------------------------------------------------------------- tables


def test_table_aligns_columns_and_keeps_cells_on_one_line() -> None:
    """Columns padded to the widest cell, numbers right-aligned, None as '-', cells cut and cleaned of control characters."""
    lines = table(["ID", "NAME", "NOTE"], [[1, "a", None], [22, "bbbb", {"k": [1, 2]}]], right=[0])
    assert lines == ["ID  NAME  NOTE", " 1  a     -", "22  bbbb  {\"k\":[1,2]}"]
    assert cell("x" * 100) == "x" * 71 + "…"
    assert cell("a\nb\x1b[31m\x00") == "a b\ufffd[31m\ufffd"
    assert cell(True) == "yes" and cell("") == "-"
    assert [duration(None), duration(340), duration(12_500), duration(245_000), duration(7_380_000), duration(3 * 86_400_000 + 4 * 3_600_000)] == [
        "-", "340 ms", "12.5 s", "4 m 05 s", "2 h 03 m", "3 d 04 h"]


# ---------------------------------------------------------------------------------- runs


def test_runs_list_show_steps_and_export(dev: Dev) -> None:
    """A finished run: listed (pages and filters), shown with its timeline, its steps, exported; each with --json."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "echo.json"), "--tenant", tenant).ok()
    runs = [dev.launch("echo", {"n": i, "card": "4111"}, tenant) for i in range(3)]
    for run in runs:
        dev.until(run, ("SUCCEEDED",), tenant)

    listed = dev.run("runs", "list", "--tenant", tenant).ok().stdout.splitlines()
    assert listed[0].split() == ["RUN", "WORKFLOW", "VERSION", "STATUS", "STARTED", "DURATION", "NOTE"]
    assert [line.split()[0] for line in listed[1:]] == list(reversed(runs))
    assert all(line.split()[1:4] == ["echo", "1", "SUCCEEDED"] for line in listed[1:])
    page = dev.run("runs", "list", "--tenant", tenant, "--limit", "2", "--json").ok().json
    assert [r["runId"] for r in page["items"]] == runs[:0:-1] and page["nextCursor"]
    rest = dev.run("runs", "list", "--tenant", tenant, "--limit", "2", "--cursor", page["nextCursor"], "--json").ok().json
    assert [r["runId"] for r in rest["items"]] == [runs[0]] and rest["nextCursor"] is None
    human_page = dev.run("runs", "list", "--tenant", tenant, "--limit", "2").ok().stdout
    assert human_page.splitlines()[-1] == f"more: --cursor {page['nextCursor']}"
    assert dev.run("runs", "list", "--tenant", tenant, "--status", "failed", "--workflow", "echo").ok().stdout == "no runs\n"
    assert len(dev.run("runs", "list", "--tenant", tenant, "--since", "1h", "--root-only", "--json").ok().json["items"]) == 3
    assert dev.run("runs", "list", "--tenant", tenant, "--until", "2000-01-01T00:00:00Z", "--json").ok().json["items"] == []
    assert dev.run("runs", "list", "--tenant", tenant, "--stuck", "--json").ok().json == {"items": [], "nextCursor": None}

    shown = dev.run("runs", "show", runs[0], "--tenant", tenant).ok().stdout.splitlines()
    assert shown[0] == "echo v1  SUCCEEDED" and shown[1].split() == ["run", runs[0]]
    assert any(line.split()[:2] == ["payload", '{"card":"4111","n":0}'] for line in shown)
    assert any("root.steps[0]" in line and "action.call" in line and "SUCCEEDED" in line for line in shown)
    detail = dev.run("runs", "show", runs[0], "--tenant", tenant, "--json").ok().json
    assert detail["runId"] == runs[0] and detail["status"] == "SUCCEEDED" and detail["vars"]["said"]["n"] == 0
    assert detail["diagnosis"] is None and detail["history"] == [] and detail["output"]["vars"] == detail["vars"]

    steps = dev.run("runs", "steps", runs[0], "--tenant", tenant).ok().stdout.splitlines()
    assert steps[0].split()[:6] == ["SEQ", "PATH", "TYPE", "STEP", "NAME", "STATUS"]
    assert steps[1].split()[:8] == ["1", "root.steps[0]", "action.call", "say", "Say", "it", "SUCCEEDED", "1"]
    (step,) = dev.run("runs", "steps", runs[0], "--tenant", tenant, "--json").ok().json
    assert step["name"] == "Say it" and step["input"] == {"n": 0, "card": "4111"} and step["output"] == {"n": 0, "card": "4111"}

    exported = dev.run("runs", "export", runs[0], "--tenant", tenant).ok().json
    assert exported["run"]["runId"] == runs[0] and exported["definition"]["definition"]["id"] == "echo" and len(exported["invocations"]) == 1
    out = dev.files / "export.json"
    written = dev.run("runs", "export", runs[0], "--tenant", tenant, "--out", str(out)).ok()
    assert written.stdout.startswith(f"exported run {runs[0]} to {out} (1 steps,")
    assert json.loads(out.read_text())["steps"] == exported["steps"]
    assert dev.run("runs", "export", runs[0], "--tenant", tenant, "--out", str(out), "--json").ok().json == {"runId": runs[0], "file": str(out), "bytes": out.stat().st_size}

    # the database alone is enough to read (no diagnosis then); an unreachable Temporal only costs the diagnosis
    alone = dev.run("runs", "show", runs[0], "--tenant", tenant, "--json", WFR_TEMPORAL_ADDRESS=None).ok()
    assert alone.json["runId"] == runs[0] and alone.stderr == ""
    unreachable = dev.run("runs", "list", "--tenant", tenant, "--json", WFR_TEMPORAL_ADDRESS="127.0.0.1:1").ok()
    assert len(unreachable.json["items"]) == 3
    assert unreachable.stderr.startswith("warning: shown without diagnosis: cannot reach Temporal at 127.0.0.1:1 (WFR_TEMPORAL_ADDRESS)")


def test_redaction_rules_apply_to_what_the_cli_shows(dev: Dev) -> None:
    """`wfr redaction add|list|remove` per tenant; a rule hides the value in `runs show`, `runs steps` and `runs export`."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "echo.json"), "--tenant", tenant).ok()
    run = dev.launch("echo", {"n": 1, "card": "4111"}, tenant)
    dev.until(run, ("SUCCEEDED",), tenant)
    assert dev.run("redaction", "list", "--tenant", tenant).ok().stdout.startswith("no redaction rules")
    added = dev.run("redaction", "add", "--key", "card", "--tenant", tenant, "--actor", "alice", "--json").ok().json
    assert added["kind"] == "key" and added["pattern"] == "card" and added["createdBy"] == "alice"
    path_rule = dev.run("redaction", "add", "--path", "vars.said.n", "--tenant", tenant).ok().stdout
    assert path_rule.startswith("redaction rule ") and path_rule.rstrip().endswith("path vars.said.n")
    listed = dev.run("redaction", "list", "--tenant", tenant).ok().stdout.splitlines()
    assert listed[0].split() == ["ID", "KIND", "PATTERN", "CREATED", "BY"] and [line.split()[1:3] for line in listed[1:]] == [["key", "card"], ["path", "vars.said.n"]]
    assert [r["pattern"] for r in dev.run("redaction", "list", "--tenant", tenant, "--json").ok().json] == ["card", "vars.said.n"]
    assert dev.run("redaction", "list", "--json").ok().json == []  # another tenant's rules are its own

    shown = dev.run("runs", "show", run, "--tenant", tenant, "--json").ok().json
    assert shown["payload"] == {"n": 1, "card": "[REDACTED]"} and shown["vars"]["said"] == {"n": "[REDACTED]", "card": "[REDACTED]"}
    assert "4111" not in dev.run("runs", "show", run, "--tenant", tenant).ok().stdout
    assert "4111" not in dev.run("runs", "steps", run, "--tenant", tenant, "--json").ok().stdout
    assert "4111" not in dev.run("runs", "export", run, "--tenant", tenant).ok().stdout

    assert dev.run("redaction", "remove", str(added["id"]), "--tenant", tenant).ok().stdout == f"removed redaction rule {added['id']}\n"
    assert dev.run("redaction", "remove", str(added["id"]), "--tenant", tenant, "--json").code == 1
    _one_error(dev.run("redaction", "remove", str(added["id"]), "--tenant", tenant), 1, f"redaction rule {added['id']} not found")
    assert dev.run("runs", "show", run, "--tenant", tenant, "--json").ok().json["payload"]["card"] == "4111"


def test_live_cancel_replay_and_history(dev: Dev) -> None:
    """A waiting run: its live view; cancel with actor and reason (in its history); replay from the original input; replay with an edited payload."""
    run = dev.launch("wait", {"key": f"live-{uuid.uuid4().hex[:6]}"})
    dev.until(run, ("WAITING",))
    live = dev.run("runs", "live", run).ok().stdout.splitlines()
    assert live[0].startswith("current step: ") and '"stepId":"w"' in live[0] and '"eventName":"go"' in live[1]
    assert dev.run("runs", "live", run, "--json").ok().json["currentWait"]["eventName"] == "go"

    canceled = dev.run("runs", "cancel", run, "--reason", "wrong customer", "--actor", "alice", "--json").ok().json
    assert canceled == {"runId": run, "status": "CANCEL_REQUESTED"}
    shown = dev.until(run, ("CANCELED",))
    assert [(h["action"], h["actor"], h["reason"]) for h in shown["history"]] == [("cancel", "alice", "wrong customer")]
    human = dev.run("runs", "show", run).ok().stdout
    assert "history:" in human and "wrong customer" in human and "alice" in human

    replayed = dev.run("runs", "replay", run, "--reason", "again", "--json").ok().json
    assert replayed["replayOfRunId"] == run and replayed["workflowId"] == "wait" and replayed["runId"] != run
    history = dev.run("runs", "show", run, "--json").ok().json["history"]
    assert history[-1]["action"] == "replay" and history[-1]["actor"].startswith("cli:") and history[-1]["detail"]["newRunId"] == replayed["runId"]
    assert dev.run("runs", "show", replayed["runId"], "--json").ok().json["payload"] == shown["payload"]
    listed = dev.run("runs", "list", "--workflow", "wait").ok().stdout
    assert f"replay of {run}" in listed
    edited = dev.run("runs", "replay", run, "--payload", '{"key": "edited"}').ok().stdout
    assert edited.startswith(f"replayed run {run} as run ") and "(wait v1, " in edited
    new_id = edited.split()[5]
    assert dev.run("runs", "show", new_id, "--json").ok().json["payload"] == {"key": "edited"}
    payload_file = dev.files / "replay-payload.json"
    payload_file.write_text('{"key": "from-file"}')
    from_file = dev.run("runs", "replay", run, "--payload", f"@{payload_file}", "--json").ok().json
    assert dev.run("runs", "show", from_file["runId"], "--json").ok().json["payload"] == {"key": "from-file"}
    cleanup = dev.run("runs", "cancel", replayed["runId"], new_id, from_file["runId"], "--json").ok().json
    assert sorted(cleanup["canceled"]) == sorted([replayed["runId"], new_id, from_file["runId"]])


def test_replay_dry_run_checks_the_payload_and_launches_nothing(dev: Dev) -> None:
    """`wfr runs replay --dry-run`: a payload the schema refuses lists each path and exits 1; a good one says so; no run is started."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "echo.json"), "--tenant", tenant).ok()
    run = dev.launch("echo", {"n": 1}, tenant)
    dev.until(run, ("SUCCEEDED",), tenant)
    bad = dev.run("runs", "replay", run, "--payload", '{"n": "five"}', "--dry-run", "--tenant", tenant)
    assert bad.code == 1 and "payload.n" in bad.stdout and "PATH" in bad.stdout, bad
    checked = dev.run("runs", "replay", run, "--payload", '{"n": "five"}', "--dry-run", "--json", "--tenant", tenant)
    assert checked.code == 1 and checked.json["valid"] is False and checked.json["errors"][0]["path"] == "payload.n"
    good = dev.run("runs", "replay", run, "--payload", '{"n": 5}', "--dry-run", "--tenant", tenant).ok()
    assert "would be accepted (nothing launched)" in good.stdout
    assert dev.run("runs", "replay", run, "--dry-run", "--json", "--tenant", tenant).ok().json == {"valid": True, "errors": []}
    listed = dev.run("runs", "list", "--json", "--tenant", tenant).ok().json
    assert [r["runId"] for r in listed["items"]] == [run]


def test_schedules_list_show_pause_unpause_trigger(dev: Dev) -> None:
    """`wfr schedules`: a trigger schedule (made as publishing makes them) listed, shown, paused, unpaused and fired; errors are one line."""
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleSpec

    tenant = _tenant()
    schedule_id = f"wfr:{tenant}:echo:{uuid.uuid4().hex[:12]}"
    trigger = {"type": "recurring", "cron": "0 3 1 1 *", "timezone": "Europe/Paris"}

    async def create(client: Any) -> None:
        await client.create_schedule(schedule_id, Schedule(
            action=ScheduleActionStartWorkflow("wfr-test-never-run", id=f"fire-{schedule_id}", task_queue="wfr-test-nobody-polls"),
            spec=ScheduleSpec(cron_expressions=[trigger["cron"]], time_zone_name="Europe/Paris")),
            memo={"tenant": tenant, "workflowId": "echo", "trigger": trigger, "triggerKey": schedule_id.rsplit(":", 1)[1]})

    dev.temporal(create)
    try:
        deadline = time.monotonic() + 30
        while not dev.run("schedules", "list", "--json", "--tenant", tenant).ok().json["items"]:
            assert time.monotonic() < deadline, "the schedule was never listed"
            time.sleep(0.2)
        listed = dev.run("schedules", "list", "--tenant", tenant).ok().stdout
        assert "SCHEDULE" in listed and schedule_id in listed and "0 3 1 1 * (Europe/Paris)" in listed and "active" in listed
        assert "no schedules" in dev.run("schedules", "list", "--tenant", _tenant()).ok().stdout
        paused = dev.run("schedules", "pause", schedule_id, "--reason", "quarter end", "--tenant", tenant, "--json").ok().json
        assert paused["paused"] and paused["note"].endswith(": quarter end")
        again = dev.run("schedules", "pause", schedule_id, "--tenant", tenant)
        assert again.code == 1 and "already paused" in again.stderr and "Traceback" not in again.stderr
        shown = dev.run("schedules", "show", schedule_id, "--tenant", tenant).ok().stdout
        assert "state        paused" in shown and "quarter end" in shown
        assert not dev.run("schedules", "unpause", schedule_id, "--tenant", tenant, "--json").ok().json["paused"]
        dev.run("schedules", "trigger", schedule_id, "--tenant", tenant).ok()
        deadline = time.monotonic() + 30
        while dev.run("schedules", "show", schedule_id, "--json", "--tenant", tenant).ok().json["fires"] != 1:
            assert time.monotonic() < deadline, "the fire was never recorded"
            time.sleep(0.2)
        other = dev.run("schedules", "show", schedule_id, "--tenant", _tenant())
        assert other.code == 1 and f"schedule {schedule_id} not found" in other.stderr
    finally:
        dev.temporal(lambda client: client.get_schedule_handle(schedule_id).delete())


def test_bulk_cancel_by_filter_with_a_dry_run_and_by_ids(dev: Dev) -> None:
    """`--filter` with filter options and `--dry-run` reports and changes nothing; several ids cancel and report what was skipped."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "wait.json"), str(dev.files / "echo.json"), "--tenant", tenant).ok()
    runs = [dev.launch("wait", {"key": f"k{i}"}, tenant) for i in range(3)]
    done = dev.launch("echo", {"n": 1}, tenant)
    for run in runs:
        dev.until(run, ("WAITING",), tenant)
    dev.until(done, ("SUCCEEDED",), tenant)

    dry = dev.run("runs", "cancel", "--filter", "--workflow", "wait", "--status", "WAITING", "--dry-run", "--tenant", tenant).ok().stdout.splitlines()
    assert dry[0] == "matched 3; would cancel 3; skipped 0 (dry run: nothing changed)"
    assert dry[1].split() == ["RUN", "RESULT"] and sorted(line.split()[0] for line in dry[2:]) == sorted(runs)
    dry_json = dev.run("runs", "cancel", "--filter", "--since", "1h", "--dry-run", "--tenant", tenant, "--json").ok().json
    assert dry_json["dryRun"] is True and sorted(dry_json["canceled"]) == sorted(runs) and dry_json["matched"] == 3
    assert {r["status"] for r in dev.run("runs", "list", "--tenant", tenant, "--json").ok().json["items"]} == {"WAITING", "SUCCEEDED"}

    by_ids = dev.run("runs", "cancel", runs[0], done, "nope", "--reason", "cleanup", "--actor", "bob", "--tenant", tenant, "--json").ok().json
    assert by_ids["canceled"] == [runs[0]] and by_ids["dryRun"] is False
    assert sorted((s["runId"], s["reason"]) for s in by_ids["skipped"]) == sorted([(done, "already ended SUCCEEDED"), ("nope", "not found")])
    dev.until(runs[0], ("CANCELED",), tenant)  # a run whose cancel is under way is still open, and would match again
    by_filter = dev.run("runs", "cancel", "--filter", "--workflow", "wait", "--tenant", tenant).ok().stdout.splitlines()
    assert by_filter[0] == "matched 2; canceled 2; skipped 0"
    for run in runs:
        shown = dev.until(run, ("CANCELED",), tenant)
    assert shown["history"][0]["action"] == "cancel" and shown["history"][0]["actor"].startswith("cli:")


def test_reconcile_cancel_and_diagnosis_of_runs_temporal_no_longer_has(dev: Dev) -> None:
    """Terminated outside the runtime: `runs reconcile` (and `runs cancel`) end the run; a stale open run whose execution is gone is shown stuck."""
    from runtime_core.persistence import RunRow, utcnow

    tenant = _tenant()
    dev.run("publish", str(dev.files / "wait.json"), "--tenant", tenant).ok()
    one, two = dev.launch("wait", {"key": "a"}, tenant), dev.launch("wait", {"key": "b"}, tenant)
    for run in (one, two):
        dev.until(run, ("WAITING",), tenant)

    async def terminate(client: Any) -> None:
        for run in (one, two):
            await client.get_workflow_handle(f"workflow-runtime-v2:run:{run}").terminate(reason="ops clean-up")

    dev.temporal(terminate)
    reconciled = dev.run("runs", "reconcile", one, "--tenant", tenant).ok().stdout.splitlines()
    assert reconciled[0] == "checked 1 open run(s); reconciled 1"
    assert reconciled[1].split() == ["RUN", "STATUS", "TEMPORAL", "REASON"] and reconciled[2].split()[:3] == [one, "CANCELED", "TERMINATED"]
    assert "ops clean-up" in reconciled[2]
    shown = dev.run("runs", "show", one, "--tenant", tenant, "--json").ok().json
    assert shown["status"] == "CANCELED" and "ops clean-up" in shown["error"]["message"] and shown["history"][0]["action"] == "reconcile"
    canceled = dev.run("runs", "cancel", two, "--tenant", tenant).ok().stdout
    assert canceled == f"run {two}: its Temporal execution had already ended; reconciled as CANCELED\n"

    # an open row whose execution Temporal does not have, with no progress for 10 minutes: stuck, EXECUTION_GONE
    gone = uuid.uuid4().hex

    async def insert(database: Any) -> None:
        long_ago = utcnow() - timedelta(minutes=10)
        async with database.sessions.begin() as session:
            session.add(RunRow(run_id=gone, tenant=tenant, workflow_id="wait", workflow_version=1, status="RUNNING", engine="temporal",
                               temporal_workflow_id=f"workflow-runtime-v2:run:{gone}", definition_hash="x", semantics_version=1, root_run_id=gone,
                               input={}, created_at=long_ago, started_at=long_ago, updated_at=long_ago))

    dev.database(insert)
    human = dev.run("runs", "show", gone, "--tenant", tenant).ok().stdout.splitlines()
    banner = [line for line in human if line.startswith("STUCK since ")]
    assert len(banner) == 1 and ": EXECUTION_GONE: Temporal has no execution for this run" in banner[0], human
    assert dev.run("runs", "show", gone, "--tenant", tenant, "--json").ok().json["diagnosis"]["reason"] == "EXECUTION_GONE"
    stuck = dev.run("runs", "list", "--stuck", "--tenant", tenant).ok().stdout.splitlines()
    assert len(stuck) == 2 and stuck[1].split()[0] == gone and stuck[1].rstrip().endswith("STUCK EXECUTION_GONE")
    assert [r["runId"] for r in dev.run("runs", "list", "--stuck", "--tenant", tenant, "--json").ok().json["items"]] == [gone]
    everything = dev.run("runs", "reconcile", "--tenant", tenant, "--actor", "dave", "--json").ok().json
    assert everything["checked"] == 1 and everything["reconciled"][0]["runId"] == gone and everything["reconciled"][0]["temporalStatus"] == "NOT_FOUND"
    assert dev.run("runs", "show", gone, "--tenant", tenant, "--json").ok().json["history"][0]["actor"] == "dave"
    assert dev.run("runs", "reconcile", "--tenant", tenant).ok().stdout == "checked 0 open run(s); reconciled 0\n"


def test_resume_refuses_a_run_that_did_not_fail(dev: Dev) -> None:
    """`wfr runs resume` of a run that is not FAILED is one Error line (409 in the API)."""
    run = dev.launch("echo", {"n": 1})
    dev.until(run, ("SUCCEEDED",))
    result = dev.run("runs", "resume", run, "--reason", "try")
    _one_error(result, 1, "")


def test_resume_continues_a_failed_run_from_its_failed_step(dev: Dev) -> None:
    """`wfr runs resume` of a FAILED run: the same run continues from the failed step; the counter before it stays exact; the history says who."""
    n = uuid.uuid4().int % 10**6
    run = dev.launch("flaky", {"n": n})
    dev.until(run, ("FAILED",))
    resumed = dev.run("runs", "resume", run, "--reason", "fixed", "--actor", "erin", "--json")
    assert resumed.code == 0, resumed.stderr
    assert resumed.json["runId"] == run
    shown = dev.until(run, ("SUCCEEDED",))
    assert [(h["action"], h["actor"], h["reason"]) for h in shown["history"]] == [("resume", "erin", "fixed")]
    steps = dev.run("runs", "steps", run, "--json").ok().json
    assert [s["stepId"] for s in steps if s["status"] == "SUCCEEDED"].count("count") == 1


# --------------------------------------------------------------------------------- tasks


def test_tasks_list_show_complete_and_override(dev: Dev) -> None:
    """Tasks listed and shown; a response that breaks the form is refused path by path (the task stays open); answered; an admin override needs a reason."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "ask.json"), "--tenant", tenant).ok()
    first, second = dev.launch("ask", {"what": "invoice"}, tenant), dev.launch("ask", {"what": "refund"}, tenant)
    task, other = dev.task_of(first, tenant), dev.task_of(second, tenant)

    listed = dev.run("tasks", "list", "--tenant", tenant).ok().stdout.splitlines()
    assert listed[0].split() == ["TASK", "TYPE", "TITLE", "STATUS", "RUN", "CREATED", "COMPLETED"]
    assert {line.split()[0] for line in listed[1:]} == {task, other} and "Approve invoice" in "\n".join(listed)
    page = dev.run("tasks", "list", "--tenant", tenant, "--type", "approve", "--limit", "1", "--json").ok().json
    assert len(page["items"]) == 1 and page["nextCursor"]
    shown = dev.run("tasks", "show", task, "--tenant", tenant).ok().stdout.splitlines()
    assert shown[0] == "Approve invoice  (approve, PENDING)" and any(line.split() == ["context", '{"what":"invoice"}'] for line in shown)
    detail = dev.run("tasks", "show", task, "--tenant", tenant, "--json").ok().json
    assert detail["formSchema"]["required"] == ["ok"] and detail["contextData"] == {"what": "invoice"} and detail["runId"] == first

    refused = dev.run("tasks", "complete", task, "--response", '{"ok": "yes"}', "--tenant", tenant)
    _one_error(refused, 1, "the response does not match the task's form schema; the task stays open", listed=1)
    assert refused.stderr.splitlines()[0] == "response.ok: 'yes' is not of type 'boolean'"
    assert dev.run("tasks", "complete", task, "--response", '{"ok": true}', "--tenant", tenant).ok().stdout == f"task {task} completed\n"
    assert dev.until(first, ("SUCCEEDED",), tenant)["status"] == "SUCCEEDED"
    done = dev.run("tasks", "show", task, "--tenant", tenant, "--json").ok().json
    assert done["status"] == "COMPLETED" and done["response"] == {"ok": True} and done["completedBy"].startswith("cli:")
    _one_error(dev.run("tasks", "complete", task, "--response", '{"ok": true}', "--tenant", tenant), 1, f"task {task} is COMPLETED, not PENDING")
    assert dev.run("tasks", "list", "--tenant", tenant, "--status", "completed", "--json").ok().json["items"][0]["taskId"] == task
    assert len(dev.run("tasks", "list", "--tenant", tenant, "--status", "all", "--json").ok().json["items"]) == 2

    _one_error(dev.run("tasks", "complete", other, "--response", "{}", "--admin", "root", "--tenant", tenant), 2, "--admin needs --reason")
    overridden = dev.run("tasks", "complete", other, "--response", '{"anything": 1}', "--admin", "root", "--reason", "phone approval", "--tenant", tenant, "--json").ok().json
    assert overridden["adminOverride"] is True and overridden["completedBy"] == "root" and overridden["response"] == {"anything": 1}
    history = dev.until(second, ("SUCCEEDED",), tenant)["history"]
    assert [(h["action"], h["actor"], h["reason"]) for h in history] == [("task-override", "root", "phone approval")]


# -------------------------------------------------------------------------------- events


def test_events_send_list_and_show(dev: Dev) -> None:
    """`events send` still waits and reports its deliveries; `events list|show` read the event and where it went."""
    tenant = _tenant()
    dev.run("publish", str(dev.files / "wait.json"), "--tenant", tenant).ok()
    run = dev.launch("wait", {"key": "K"}, tenant)
    dev.until(run, ("WAITING",), tenant)
    event_id = f"E-{uuid.uuid4().hex[:6]}"
    sent = dev.run("events", "send", "go", "--key", "K", "--payload", '{"n": 3}', "--event-id", event_id, "--tenant", tenant, "--json").ok().json
    assert sent["eventId"] == event_id and sent["signalled"] == [run]
    dev.until(run, ("SUCCEEDED",), tenant)

    listed = dev.run("events", "list", "--tenant", tenant).ok().stdout.splitlines()
    assert listed[0].split() == ["EVENT", "NAME", "KEY", "RECEIVED", "SOURCE", "DELIVERIES"]
    assert listed[1].split()[:3] == [event_id, "go", "K"] and listed[1].endswith("1 DELIVERED")
    page = dev.run("events", "list", "--tenant", tenant, "--name", "go", "--key", "K", "--json").ok().json
    assert [e["eventId"] for e in page["items"]] == [event_id] and page["nextCursor"] is None
    assert dev.run("events", "list", "--tenant", tenant, "--name", "other").ok().stdout == "no events\n"
    shown = dev.run("events", "show", event_id, "--tenant", tenant).ok().stdout.splitlines()
    assert shown[0].startswith("go  key K  received ") and shown[2].split() == ["payload", '{"n":3}']
    assert shown[4].split()[:4] == ["signal", run, run, "DELIVERED"]
    event = dev.run("events", "show", event_id, "--tenant", tenant, "--json").ok().json
    assert event["payload"] == {"n": 3} and [(d["kind"], d["runId"], d["status"]) for d in event["deliveries"]] == [("signal", run, "DELIVERED")]


# --------------------------------------------------------------------------- definitions


def test_definitions_list_and_show(dev: Dev) -> None:
    """Workflows with their latest version; a version's definition (the latest by default)."""
    listed = dev.run("definitions", "list").ok().stdout.splitlines()
    assert listed[0].split() == ["WORKFLOW", "NAME", "LATEST", "UPDATED", "DESCRIPTION"]
    assert [line.split()[0] for line in listed[1:]] == ["ask", "echo", "flaky", "wait"]
    assert [d["workflowId"] for d in dev.run("definitions", "list", "--json").ok().json] == ["ask", "echo", "flaky", "wait"]
    shown = dev.run("definitions", "show", "echo").ok().stdout
    head, _, document = shown.partition("\n\n")
    assert head.splitlines()[0].split() == ["VERSION", "HASH", "PUBLISHED", "TRIGGER"] and head.splitlines()[1].split()[0] == "1"
    assert document.startswith("echo v1 (") and json.loads(document.split(":\n", 1)[1]) == ECHO
    detail = dev.run("definitions", "show", "echo", "--version", "1", "--json").ok().json
    assert detail["definition"] == ECHO and detail["version"] == 1 and len(detail["hash"]) == 64
    assert dev.run("definitions", "list", "--tenant", _tenant()).ok().stdout == "no workflows published\n"


# -------------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_tokens_create_list_revoke_with_the_database_alone(dev: Dev, backend: str, tmp_path: Path) -> None:
    """`wfr tokens` with only WFR_DATABASE_URL: the token alone on the last line of a real process's stdout, never listed, revoked by name or id."""
    from .conftest import create_postgres_database

    url = f"sqlite:///{tmp_path / 'tokens.db'}" if backend == "sqlite" else _in_thread(lambda: asyncio.run(create_postgres_database()))

    def alone(*args: str) -> Result:  # only WFR_DATABASE_URL, as an operator's shell would have it for tokens
        return dev.run(*args, WFR_DATABASE_URL=url, WFR_TEMPORAL_ADDRESS=None)

    alone("db", "upgrade").ok()
    created = dev.process("tokens", "create", "--tenant", "acme", "--role", "operator", "--name", "ci", WFR_DATABASE_URL=url).ok()
    lines = created.stdout.splitlines()
    token = lines[-1]
    assert token.startswith("wfr_") and len(token) > 40 and token == token.strip()
    assert lines[0].startswith("token ci (id ") and "tenant acme, role operator" in lines[0]
    second = alone("tokens", "create", "--tenant", "acme", "--role", "viewer", "--json").ok().json
    assert second["role"] == "viewer" and second["token"].startswith("wfr_") and second["name"].startswith("token-")
    alone("tokens", "create", "--tenant", "beta", "--role", "admin", "--name", "ci").ok()

    listed = alone("tokens", "list").ok().stdout
    assert token not in listed and token[:12] in listed and second["token"] not in listed
    assert listed.splitlines()[0].split() == ["ID", "TENANT", "NAME", "ROLE", "PREFIX", "CREATED", "LAST", "USED", "REVOKED"]
    mine = alone("tokens", "list", "--tenant", "acme", "--json").ok().json
    assert [t["name"] for t in mine] == ["ci", second["name"]] and all("token" not in t for t in mine)

    _one_error(alone("tokens", "revoke", "ci"), 1, "several tenants have a token named 'ci'")
    revoked = alone("tokens", "revoke", "ci", "--tenant", "acme").ok().stdout
    assert revoked.startswith(f"revoked token ci (id {mine[0]['id']}) of tenant acme at ")
    by_id = alone("tokens", "revoke", str(second["id"]), "--json").ok().json
    assert by_id["name"] == second["name"] and by_id["revokedAt"]
    assert [t["revokedAt"] is not None for t in alone("tokens", "list", "--tenant", "acme", "--json").ok().json] == [True, True]

    _one_error(dev.process("tokens", "create", "--tenant", "acme", "--role", "root", WFR_DATABASE_URL=url), 2, "Invalid value for '--role': 'root' is not one of")
    _one_error(alone("tokens", "create", "--role", "viewer"), 2, "Missing option '--tenant'")
    _one_error(alone("tokens", "create", "--tenant", "acme", "--role", "viewer", "--name", "ci"), 1, "tenant 'acme' already has a token named 'ci'")
    _one_error(alone("tokens", "create", "--tenant", "a b", "--role", "viewer"), 1, "tenant must be letters, digits", listed=1)
    for unknown in ("nope", "123456", "99999999999999999999999", "²"):
        _one_error(alone("tokens", "revoke", unknown), 1, f"token {unknown!r} not found")


# ------------------------------------------------------------------------ expected failures


def test_expected_failures_are_one_line(dev: Dev) -> None:
    """Every refusal is one `Error:` line (422s list their problems first) with exit 1, or 2 for a usage error; never a traceback."""
    finished = dev.launch("echo", {"n": 1})
    dev.until(finished, ("SUCCEEDED",))
    canceled = dev.launch("wait", {"key": "f"})
    dev.until(canceled, ("WAITING",))
    dev.run("runs", "cancel", canceled).ok()
    dev.until(canceled, ("CANCELED",))
    task = dev.task_of(dev.launch("ask", {"what": "x"}))
    no_stack: dict[str, str | None] = {"WFR_TEMPORAL_ADDRESS": None}
    closed: dict[str, str | None] = {"WFR_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    empty_db: dict[str, str | None] = {"WFR_DATABASE_URL": f"sqlite:///{dev.files / 'empty.db'}", "WFR_TEMPORAL_ADDRESS": None}
    cases: list[tuple[list[str], dict[str, str | None], int, str, int]] = [
        # not found, including another tenant's resources
        (["runs", "show", "nope"], {}, 1, "run nope not found", 0),
        (["runs", "show", finished, "--tenant", "other"], {}, 1, f"run {finished} not found", 0),
        (["runs", "steps", "nope", "--json"], {}, 1, "run nope not found", 0),
        (["runs", "live", "nope"], {}, 1, "run nope not found", 0),
        (["runs", "export", finished, "--tenant", "other"], {}, 1, f"run {finished} not found", 0),
        (["runs", "cancel", "nope"], {}, 1, "run nope not found", 0),
        (["runs", "replay", "nope"], {}, 1, "run nope not found", 0),
        (["runs", "resume", "nope"], {}, 1, "run nope not found", 0),
        (["runs", "show", "x" * 100], {}, 1, "not found", 0),
        (["tasks", "show", "nope"], {}, 1, "task nope not found", 0),
        (["tasks", "show", task, "--tenant", "other"], {}, 1, f"task {task} not found", 0),
        (["tasks", "complete", "nope", "--response", "{}"], {}, 1, "task nope not found", 0),
        (["events", "show", "nope"], {}, 1, "event nope not found", 0),
        (["definitions", "show", "nope"], {}, 1, "workflow nope not found", 0),
        (["definitions", "show", "echo", "--version", "9"], {}, 1, "workflow echo version 9 not found", 0),
        (["redaction", "remove", "999999"], {}, 1, "redaction rule 999999 not found", 0),
        # the state of the resource
        (["runs", "cancel", canceled], {}, 1, f"run {canceled} has already ended CANCELED", 0),
        (["runs", "live", finished], {}, 1, f"run {finished} has ended (SUCCEEDED): there is no live view", 0),
        # invalid input: every problem listed, then the Error line
        (["runs", "replay", finished, "--payload", '{"n": "x"}'], {}, 1, "the payload does not match payloadSchema", 1),
        (["runs", "list", "--status", "bogus"], {}, 1, "unknown status 'BOGUS'", 1),
        (["runs", "list", "--cursor", "not-a-cursor"], {}, 1, "cursor is not one this API handed out", 1),
        (["tasks", "list", "--cursor", "not-a-cursor"], {}, 1, "cursor is not one this API handed out", 1),
        (["redaction", "add", "--path", "nowhere.x"], {}, 1, "a path rule starts with one of payload", 1),
        (["redaction", "add", "--key", "a.b"], {}, 1, "a key rule is one key name pattern", 1),
        # malformed arguments: refused before anything connects
        (["runs", "replay", finished, "--payload", "{bad"], closed, 1, "--payload is not JSON", 0),
        (["runs", "replay", finished, "--payload", "[1]"], closed, 1, "--payload must be a JSON object, not list", 0),
        (["runs", "replay", finished, "--reason", "r" * 2001], closed, 2, "--reason: String should have at most 2000 characters", 0),
        (["runs", "cancel", "a\x00b"], closed, 1, "RUN_ID: contains the NUL character", 0),
        (["runs", "show", ""], {}, 1, "RUN_ID must not be empty", 0),
        (["tasks", "complete", "t", "--response", '{"x": NaN}'], closed, 1, "response.x: is nan", 0),
        (["runs", "list", "--since", "yesterday"], closed, 2, "Invalid value for '--since': 'yesterday' is neither an RFC 3339 instant", 0),
        (["runs", "list", "--until", "2026-01-01"], closed, 2, "Invalid value for '--until'", 0),
        (["runs", "list", "--limit", "0"], closed, 2, "Invalid value for '--limit'", 0),
        (["runs", "cancel"], closed, 2, "give the RUN_ID to cancel, several, or --filter", 0),
        (["runs", "cancel", "a", "--filter"], closed, 2, "give RUN_IDs or --filter, not both", 0),
        (["runs", "cancel", "a", "--workflow", "w"], closed, 2, "select runs with --filter", 0),
        (["tasks", "list", "--status", "done"], closed, 2, "Invalid value for '--status'", 0),
        (["tasks", "complete", "t", "--response", "{}", "--reason", "r"], closed, 2, "--reason goes with --admin", 0),
        (["redaction", "add"], closed, 2, "give one of --path and --key", 0),
        (["redaction", "add", "--path", "payload.x", "--key", "k"], closed, 2, "give one of --path and --key", 0),
        (["redaction", "remove", "abc"], closed, 2, "Invalid value for 'ID'", 0),
        (["definitions", "show", "echo", "--version", "0"], closed, 2, "Invalid value for '--version'", 0),
        (["runs", "nope"], {}, 2, "No such command 'nope'", 0),
        # what the command needs is not there
        (["runs", "cancel", finished], no_stack, 1, "no stack configured", 0),
        (["runs", "live", finished], no_stack, 1, "no stack configured", 0),
        (["runs", "reconcile"], no_stack, 1, "no stack configured", 0),
        (["runs", "list", "--stuck"], no_stack, 1, "no stack configured", 0),
        (["tasks", "complete", task, "--response", "{}"], no_stack, 1, "no stack configured", 0),
        (["runs", "replay", finished], closed, 1, "cannot reach Temporal at 127.0.0.1:1", 0),
        (["runs", "resume", finished], closed, 1, "cannot reach Temporal at 127.0.0.1:1", 0),
        (["runs", "show", finished], empty_db, 1, "has no runtime schema, this wfr expects", 0),
        (["tokens", "list"], empty_db, 1, "has no runtime schema, this wfr expects", 0),
        (["tokens", "list"], {"WFR_DATABASE_URL": "bogus://"}, 1, "WFR_DATABASE_URL is not a usable database URL", 0),
        (["events", "list"], {"WFR_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}, 1, "cannot use the database postgresql+asyncpg://u@127.0.0.1:1/x (WFR_DATABASE_URL)", 0),
    ]
    failures = []
    for args, env, code, says, listed in cases:
        result = dev.run(*args, **env)
        try:
            _one_error(result, code, says, listed=listed)
            if "--json" in args:
                assert result.stdout == ""
        except AssertionError as err:
            failures.append(f"wfr {' '.join(a[:40] for a in args)}: {err}")
    assert not failures, "\n".join(failures)
    # the same through a real process: stderr only, nothing on stdout
    result = dev.process("runs", "show", "nope", "--json", **dev.env)
    _one_error(result, 1, "run nope not found")
    assert result.stdout == ""
