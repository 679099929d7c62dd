"""Developer and CI sessions. `bash scripts/run <session>` bootstraps nox and runs one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["lint", "imports", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent
PACKAGES = ("packages/runtime-core", "packages/worker", "packages/domain-worker", "packages/runtime-bootstrap")
TEST_DEPS = ("pytest>=8", "pytest-asyncio>=0.24", "hypothesis>=6", "import-linter>=2.1", "asyncpg>=0.29", "httpx>=0.27", "schemathesis>=4.0,<5", "playwright>=1.45")


def _install_project(session: nox.Session, *extra: str) -> None:
    """Install the four distributions (editable) plus ``extra`` requirements."""
    args: list[str] = ["-e", "packages/runtime-core[postgres,otel]"]
    for package in PACKAGES[1:]:
        args += ["-e", package]
    session.install(*args, *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against a real Temporal dev server, SQLite and (in CI) PostgreSQL.

    The fault tests of ``tests/reliability`` take minutes and run in their own session
    (``reliability``), so this one stays fast.
    """
    _install_project(session, *TEST_DEPS)
    _ensure_chromium(session)
    session.run("pytest", "tests", "--ignore=tests/reliability", *session.posargs)


def _ensure_chromium(session: nox.Session) -> None:
    """Run Studio's browser tests drive Debian's chromium (Playwright cannot download browsers here).

    Installed with apt when missing and this is root on Debian (as in CI); otherwise the browser
    tests fail with the instruction (they never skip).
    """
    chromium = os.environ.get("WFR_CHROMIUM") or "/usr/lib/chromium/chromium"
    if Path(chromium).exists():
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        session.log("installing Debian's chromium for the browser tests (apt-get install -y chromium)")
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env={"DEBIAN_FRONTEND": "noninteractive"}, success_codes=[0, 100])
        if not Path(chromium).exists():
            session.run("apt-get", "update", "-qq", external=True)
            session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env={"DEBIAN_FRONTEND": "noninteractive"})
    else:
        session.warn(f"no chromium at {chromium}: the browser tests of tests/studio will fail (apt-get install -y chromium, or set WFR_CHROMIUM)")


@nox.session
def reliability(session: nox.Session) -> None:
    """Faults injected into real processes: kill -9 of workers, a Temporal restart, SQLite locks, PostgreSQL outages.

    Each test starts its own Temporal dev server and workflow-worker processes, and each module
    that needs PostgreSQL a private cluster (initdb into a temporary directory; the server binaries
    must be installed, and CI fails without them). Every test appends its figures to
    ``.nox/reliability-results.jsonl`` (``WFR_RELIABILITY_RESULTS`` overrides); docs/reliability.md
    says what each test injects and asserts. Pytest arguments go after ``--``.
    """
    _install_project(session, *TEST_DEPS)
    results = os.environ.get("WFR_RELIABILITY_RESULTS") or str(ROOT / ".nox" / "reliability-results.jsonl")
    session.run("pytest", "tests/reliability", *session.posargs, env={"WFR_RELIABILITY_RESULTS": results})


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff over every package, the tests and this file."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "packages", "tests", "scripts", "benchmarks", "noxfile.py", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy, strict on runtime-core."""
    _install_project(session, "mypy>=1.11")
    session.run("mypy", "--strict", "packages/runtime-core/src/runtime_core", *session.posargs)


@nox.session
def imports(session: nox.Session) -> None:
    """Check the architecture contracts of importlinter.cfg."""
    _install_project(session, "import-linter>=2.1")
    session.run("lint-imports", "importlinter.cfg")


@nox.session
def build(session: nox.Session) -> None:
    """Build the four wheels; install runtime-core's wheel alone in a fresh venv and import it."""
    session.install("build>=1.2")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for package in PACKAGES:
        session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), package)
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    session.log(f"built: {', '.join(wheels)}")
    if len(wheels) != len(PACKAGES):
        session.error(f"expected {len(PACKAGES)} wheels, got {wheels}")
    core = next(dist.glob("runtime_core-*.whl"))
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        session.run("python", "-m", "venv", str(venv))
        py = str(venv / "bin" / "python")
        session.run(py, "-m", "pip", "install", "-q", str(core), external=True)
        session.run(
            py,
            "-c",
            "import importlib.util, runtime_core.worker, runtime_core.launcher, runtime_core.publishing, runtime_core.persistence, runtime_core.tracing;"
            "missing=[m for m in ('runtime_bootstrap','workflow_worker','domain_worker','click') if importlib.util.find_spec(m)];"
            "assert not missing, missing; assert runtime_core.tracing.interceptors() == [] and not runtime_core.tracing.enabled();"
            "print('runtime-core alone imports fine (tracing off)')",
            external=True,
        )


@nox.session
def demo(session: nox.Session) -> None:
    """Run the example workflows on the embedded stack (dev server, SQLite, in-process worker)."""
    _install_project(session)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    session.run("wfr", "demo", "--examples", "docs/examples", env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: the interpreter against hand-written Temporal code (`-- --quick` for < 3 min).

    The packages are installed as a deployment installs them (not editable): pip compiles their
    bytecode, which the workflow sandbox then loads for every new run instead of compiling the
    interpreter's source again (it must when PYTHONDONTWRITEBYTECODE is set and there is none).
    """
    session.install("packages/runtime-core[postgres]", *PACKAGES[1:])
    session.install("--force-reinstall", "--no-deps", *PACKAGES)  # this tree's code, even at an unchanged version
    env = {k: v for k, v in os.environ.items() if not k.startswith("WFR_")}
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)


@nox.session
def dev(session: nox.Session) -> None:
    """Start the embedded stack with the Temporal UI and keep it running."""
    _install_project(session)
    session.run("wfr", "dev", *session.posargs)
