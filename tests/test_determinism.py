"""Determinism of the workflow-side code, checked in its source.

The workflow-worker runs the interpreter without Temporal's sandbox (``WFR_WORKFLOW_SANDBOX=0``,
the default; docs/performance.md). The sandbox never guarded the engine anyway: its modules are
passthrough modules, loaded once outside the sandbox, so a host-clock call in them was never
restricted. This scan is the guard instead: no module the interpreter workflow runs may read the
host clock, a random source, the environment, files, sockets or processes, or import the
database layer, except the uses listed in ``ALLOWED`` (each with its reason). Replay tests
(tests/test_replay.py) then check the behaviour itself against the recorded corpus.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runtime_core.worker import PASSTHROUGH_MODULES, workflow_runner

SRC = Path(__file__).resolve().parents[1] / "packages" / "runtime-core" / "src"

#: Calls that read the host's clock, randomness, environment or the outside world.
FORBIDDEN_CALLS = {
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter", "time.perf_counter_ns", "time.sleep",
    "datetime.now", "datetime.utcnow", "datetime.today", "date.today", "uuid.uuid1", "uuid.uuid4", "os.urandom", "os.getenv",
    "open", "input", "asyncio.get_event_loop", "asyncio.new_event_loop",
}
#: Modules whose import means I/O, randomness or the database.
FORBIDDEN_IMPORTS = {"random", "secrets", "socket", "subprocess", "uuid", "os", "sqlalchemy", "httpx", "requests", "aiosqlite", "asyncpg", "runtime_core.persistence"}
#: Deliberate exceptions: (file under runtime_core, the call or import) → why it is safe.
ALLOWED = {
    ("expressions/_clock.py", "datetime.now"): "the host clock of expressions evaluated outside a workflow (API previews); a workflow binds its own",
    ("expressions/_clock.py", "import random"): "the same, for $random() outside a workflow",
    ("expressions/_bounds.py", "time.thread_time"): "the CPU-time backstop of an evaluation: it can only fail a workflow task, which is retried",
}


def _workflow_modules() -> list[Path]:
    files: list[Path] = []
    for name in (*PASSTHROUGH_MODULES, "runtime_core.interpreter"):
        if not name.startswith("runtime_core"):
            continue
        base = SRC / name.replace(".", "/")
        files += sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    return sorted(set(files))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _uses(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is not None:
                tail = ".".join(name.split(".")[-2:])
                if name in FORBIDDEN_CALLS or tail in FORBIDDEN_CALLS or tail in {"time.thread_time"}:
                    found.append((node.lineno, tail if tail in FORBIDDEN_CALLS or tail == "time.thread_time" else name))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in FORBIDDEN_IMPORTS or a.name in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.split(".")[0] in FORBIDDEN_IMPORTS or any(node.module.startswith(m) for m in FORBIDDEN_IMPORTS if "." in m):
                found.append((node.lineno, f"import {node.module}"))
        elif isinstance(node, ast.Attribute) and _dotted(node) == "os.environ":
            found.append((node.lineno, "os.environ"))
    return found


def test_the_scan_covers_the_interpreter() -> None:
    """The scanned files include the engine, the workflow, the expressions and the DSL."""
    names = {str(p.relative_to(SRC / "runtime_core")) for p in _workflow_modules()}
    assert {"interpreter/_engine.py", "interpreter/_workflow.py", "expressions/_engine.py", "expressions/_fast.py", "dsl/_models.py", "contract.py"} <= names


@pytest.mark.parametrize("path", _workflow_modules(), ids=lambda p: str(p.relative_to(SRC / "runtime_core")))
def test_workflow_code_reads_no_host_state(path: Path) -> None:
    """No host clock, randomness, environment, I/O or database in code the interpreter workflow runs."""
    rel = str(path.relative_to(SRC / "runtime_core"))
    problems = [f"{rel}:{line}: {use}" for line, use in _uses(ast.parse(path.read_text(), str(path))) if (rel, use) not in ALLOWED]
    assert not problems, "non-deterministic calls in workflow code (use workflow.now(), workflow.random(), workflow.uuid4() or an activity):\n" + "\n".join(problems)


def test_the_scan_finds_what_it_forbids() -> None:
    """The scanner itself: each kind of forbidden use is found."""
    source = "import random\nfrom sqlalchemy import select\nimport os\nx = datetime.now()\ny = time.time()\nz = os.environ['A']\nopen('f')\nw = uuid.uuid4()\n"
    uses = {use for _, use in _uses(ast.parse(source))}
    assert uses == {"import random", "import sqlalchemy", "import os", "datetime.now", "time.time", "os.environ", "open", "uuid.uuid4"}


def test_workers_run_the_interpreter_directly_unless_asked() -> None:
    """The default runner has no sandbox; ``sandboxed=True`` (WFR_WORKFLOW_SANDBOX=1) brings it back."""
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    assert isinstance(workflow_runner(), UnsandboxedWorkflowRunner)
    assert isinstance(workflow_runner(sandboxed=True), SandboxedWorkflowRunner)


def test_every_allowed_use_still_exists() -> None:
    """``ALLOWED`` lists only uses that are still in the code (a stale entry would hide a new one)."""
    present = {(str(p.relative_to(SRC / "runtime_core")), use) for p in _workflow_modules() for _, use in _uses(ast.parse(p.read_text()))}
    assert set(ALLOWED) <= present
