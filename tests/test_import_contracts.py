"""The architecture contracts hold, and each kind of contract provably bites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
SOURCES = {
    "runtime_core": "packages/runtime-core/src",
    "runtime_bootstrap": "packages/runtime-bootstrap/src",
    "workflow_worker": "packages/worker/src",
    "domain_worker": "packages/domain-worker/src",
}


def _lint(tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    cwd = ROOT
    if tmp is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(tmp / module_root) for module_root in {v for v in SOURCES.values()})
        cwd = tmp
    return subprocess.run([LINT_IMPORTS, "--no-cache", "importlinter.cfg"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_contracts_hold() -> None:
    """lint-imports passes on the real tree."""
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module_file", "injected", "contract"),
    [
        ("packages/runtime-core/src/runtime_core/interpreter/_values.py", "import sqlalchemy", "deterministic workflow modules never import the database layer"),
        ("packages/runtime-core/src/runtime_core/dsl/_paths.py", "import runtime_core.persistence", "deterministic workflow modules never import the database layer"),
        ("packages/runtime-core/src/runtime_core/config.py", "import runtime_bootstrap", "runtime-core imports no bootstrap, worker or app-framework code"),
        ("packages/runtime-core/src/runtime_core/launcher/_launcher.py", "import click", "runtime-core imports no bootstrap, worker or app-framework code"),
        ("packages/worker/src/workflow_worker/_main.py", "import runtime_bootstrap.settings", "worker processes never import runtime-bootstrap"),
        ("packages/domain-worker/src/domain_worker/_main.py", "import fastapi", "worker processes never import runtime-bootstrap"),
        ("packages/runtime-core/src/runtime_core/operations/_base.py", "import uvicorn", "runtime-core imports no bootstrap, worker or app-framework code"),
        ("packages/domain-worker/src/domain_worker/_main.py", "import workflow_worker", "the authored worker and the domain worker are independent"),
        ("packages/runtime-core/src/runtime_core/operations/_health.py", "import runtime_core.interpreter", "the operations layer never imports the interpreter"),
        ("packages/runtime-bootstrap/src/runtime_bootstrap/studio/runs.py", "import runtime_core.persistence", "the API and Run Studio go through the operations layer"),
        ("packages/runtime-bootstrap/src/runtime_bootstrap/api/runs.py", "from runtime_core.launcher import Launcher", "the API and Run Studio go through the operations layer"),
    ],
)
def test_injected_forbidden_import_is_caught(tmp_path: Path, module_file: str, injected: str, contract: str) -> None:
    """A copy of the tree with one forbidden import fails lint-imports, naming the contract."""
    shutil.copy(ROOT / "importlinter.cfg", tmp_path / "importlinter.cfg")
    for src in set(SOURCES.values()):
        shutil.copytree(ROOT / src, tmp_path / src, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / module_file
    target.write_text(target.read_text() + f"\n{injected}  # injected by the test\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
