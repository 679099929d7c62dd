"""The `wfr` CLI as users run it: real processes, embedded stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime_core.persistence import head_revision

from .conftest import SHARED_SCENARIOS

WFR = str(Path(sys.executable).with_name("wfr"))
FIRST_RUNS = ("01-straight-line.json", "02-if-else.json", "17-mocked-action.json")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    env.update(extra)
    return env


def _wfr(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WFR, *args], capture_output=True, text=True, timeout=240, env=_env(**env), cwd=cwd)


def _first_run_files(tmp_path: Path) -> list[str]:
    if SHARED_SCENARIOS.is_dir():
        return [str(SHARED_SCENARIOS / name) for name in FIRST_RUNS]
    own = Path(__file__).parent / "scenarios"
    return [str(own / "nested-if-return.json"), str(own / "state-set.json")]


def test_scenario_test_passes_first_runs_on_embedded_stack(tmp_path: Path) -> None:
    """`wfr scenario test` starts its own stack and passes straight-line, if-else and mocked-action."""
    files = _first_run_files(tmp_path)
    result = _wfr("scenario", "test", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{len(files)} passed, 0 failed"
    assert all(line.startswith("PASS") for line in result.stdout.strip().splitlines()[:-1])


def test_scenario_test_fails_and_explains(tmp_path: Path) -> None:
    """A scenario whose expectation is wrong fails with exit 1 and says what differed."""
    scenario = json.loads((Path(__file__).parent / "scenarios" / "state-set.json").read_text())
    scenario["expect"]["meta"] = {"state": "wrong"}
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(scenario))
    result = _wfr("scenario", "test", str(path))
    assert result.returncode == 1
    assert "run.meta.state: expected 'wrong', got 'done'" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_scenario_run_prints_one_outcome_per_line() -> None:
    """`wfr scenario run` prints one JSON outcome per scenario and exits 0 whatever the outcome."""
    own = Path(__file__).parent / "scenarios"
    result = _wfr("scenario", "run", str(own / "unhandled-failure-shape.json"), str(own / "invalid-batch-publishes-nothing.json"))
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert first["run"]["status"] == "FAILED" and first["run"]["error"]["code"] == "K1"
    assert first["run"]["steps"][0] == {"stepId": "before", "stepPath": "root.steps[0]", "type": "transform.assign", "status": "SUCCEEDED", "attempts": 1, "itemIndex": None}
    assert second["published"] is False and second["run"] is None
    codes = {p["code"] for p in second["publishErrors"]}
    assert {"TIME_WAIT_DURATION_XOR_UNTIL", "NOT_ASSIGNABLE"} <= codes


def test_db_upgrade_and_publish(tmp_path: Path) -> None:
    """`wfr db upgrade` migrates; `wfr publish` lists every problem of a bad file and publishes nothing."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    up = _wfr("db", "upgrade", "--url", url)
    assert up.returncode == 0 and f"empty -> {head_revision()}" in up.stdout, up.stdout + up.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "bad", "version": 1, "name": "bad", "steps": [
        {"id": "a", "type": "transform.assign", "config": {"assign": {"x": {"$expr": "1 +"}}}},
        {"id": "a", "type": "action.call", "config": {"actionId": "nope", "version": 1}}]}))
    result = _wfr("publish", str(bad), WFR_DATABASE_URL=url)
    assert result.returncode == 1
    for code in ("EXPRESSION_PARSE", "DUPLICATE_STEP_ID", "ACTION_NOT_REGISTERED"):
        assert code in result.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"id": "good", "version": 1, "name": "good", "steps": [{"id": "r", "type": "control.return"}]}))
    first = _wfr("publish", str(good), WFR_DATABASE_URL=url)
    again = _wfr("publish", str(good), WFR_DATABASE_URL=url)
    assert "published: good v1" in first.stdout and "unchanged: good v1" in again.stdout


def test_bad_setting_is_named() -> None:
    """A bad setting fails with the variable's name."""
    result = _wfr("db", "upgrade", WFR_TEMPORAL_ADDRESS="nohostport")
    assert result.returncode != 0
    assert "WFR_TEMPORAL_ADDRESS must be host:port" in result.stderr


def test_dev_starts_the_whole_stack_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`wfr dev` serves Temporal and its UI on loopback, migrates SQLite, runs the worker, stops on SIGINT."""
    import signal
    import time
    import urllib.request

    from runtime_bootstrap._devserver import free_port

    port, ui_port, api_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen([WFR, "dev", "--home", str(tmp_path / "home"), "--port", str(port), "--ui-port", str(ui_port), "--api-port", str(api_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(line.startswith("Ctrl-C") for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        text = "\n".join(lines)
        assert f"Temporal:    127.0.0.1:{port}" in text, text
        assert f"Temporal UI: http://127.0.0.1:{ui_port}" in text, text
        assert "polling workflow-runtime-v2" in text
        assert f"API:         http://127.0.0.1:{api_port}/api/v1" in text, text
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ready"
        for _ in range(50):  # the UI process may take a moment after the frontend answers
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("the Temporal UI did not answer")
        assert (tmp_path / "home" / "wfr.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped" in rest


def test_schema_command_prints_the_json_schema_and_reference() -> None:
    """`wfr schema` prints the JSON Schema; `--markdown` the generated reference."""
    result = _wfr("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "ForEachStep" in schema["$defs"]
    markdown = _wfr("schema", "--markdown")
    assert markdown.stdout.startswith("# DSL reference (generated)")


def test_events_tasks_and_runs_commands_against_a_running_stack(tmp_path: Path) -> None:
    """Against `wfr dev`: publish, launch without waiting, send the event, see the run finish; cancel another."""
    import signal
    import time

    from runtime_bootstrap._devserver import free_port

    port, ui_port = free_port(), free_port()
    home = tmp_path / "home"
    dev = subprocess.Popen([WFR, "dev", "--home", str(home), "--port", str(port), "--ui-port", str(ui_port), "--api-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    assert dev.stdout is not None
    try:
        for line in dev.stdout:
            if line.startswith("Ctrl-C"):
                break
        env = {"WFR_TEMPORAL_ADDRESS": f"127.0.0.1:{port}", "WFR_DATABASE_URL": f"sqlite:///{home / 'wfr.db'}"}
        definition = tmp_path / "w.json"
        definition.write_text(json.dumps({"id": "cli-wait", "version": 1, "name": "w", "steps": [
            {"id": "w", "type": "event.wait", "config": {"eventName": "go", "correlationKey": {"$expr": "payload.k"}, "assign": {"vars.got": {"$expr": "vars.event.n"}}}}]}))
        assert _wfr("publish", str(definition), **env).returncode == 0
        launched = _wfr("launch", "cli-wait", "--payload", '{"k": "A"}', "--no-wait", **env)
        run_id = launched.stdout.split()[2]
        other = _wfr("launch", "cli-wait", "--payload", '{"k": "B"}', "--no-wait", **env).stdout.split()[2]
        for _ in range(100):
            if "WAITING" in _wfr("runs", "show", run_id, **env).stdout:
                break
            time.sleep(0.1)
        sent = _wfr("events", "send", "go", "--key", "A", "--payload", '{"n": 3}', **env)
        assert sent.returncode == 0 and run_id in json.loads(sent.stdout)["signalled"], sent.stdout + sent.stderr
        for _ in range(100):
            shown = json.loads(_wfr("runs", "show", run_id, "--json", **env).stdout)
            if shown["status"] == "SUCCEEDED":
                break
            time.sleep(0.1)
        assert shown["status"] == "SUCCEEDED" and shown["vars"]["got"] == 3
        assert _wfr("runs", "cancel", other, **env).returncode == 0
        for _ in range(100):
            if json.loads(_wfr("runs", "show", other, "--json", **env).stdout)["status"] == "CANCELED":
                break
            time.sleep(0.1)
        assert json.loads(_wfr("runs", "show", other, "--json", **env).stdout)["status"] == "CANCELED"
        refused = _wfr("runs", "cancel", other, **env)
        assert refused.returncode != 0 and "already ended CANCELED" in refused.stderr
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.communicate(timeout=60)
