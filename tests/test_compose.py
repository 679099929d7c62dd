"""compose/ checked without a Docker engine: the Compose Specification's JSON Schema, and the files the services and Dockerfiles name.

``tests/data/compose-spec.json`` is the Compose Specification's schema
(github.com/compose-spec/compose-spec, ``schema/compose-spec.json``), vendored so the check runs
offline. Beyond the schema: every build context and Dockerfile exists, every ``COPY`` source in a
Dockerfile exists in the context, every command a service or image runs is a console script of
the distribution its image installs, and every ``WFR_*`` variable set is one the runtime reads.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return document


def test_compose_file_follows_the_compose_specification() -> None:
    """compose.yaml validates against the Compose Specification's JSON Schema."""
    import json

    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_bites() -> None:
    """A misspelt key and a wrong type are refused (the vendored schema is the real one)."""
    import json

    schema = json.loads(SCHEMA.read_text())
    broken = _compose()
    next(iter(broken["services"].values()))["restrat"] = "always"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    broken = _compose()
    next(iter(broken["services"].values()))["ports"] = "8080"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def _console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = {}
    for pyproject in (ROOT / "packages").glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        for script in project.get("scripts", {}):
            scripts[script] = pyproject.parent.name
    return scripts


def _dockerfiles() -> list[Path]:
    found = sorted(COMPOSE.glob("Dockerfile.*"))
    return [f for f in found if not f.name.endswith(".dockerignore")]


@pytest.mark.parametrize("dockerfile", _dockerfiles(), ids=lambda p: p.name)
def test_dockerfile_copies_what_exists_and_runs_an_installed_script(dockerfile: Path) -> None:
    """Each COPY source exists in the build context (the repository root); CMD/ENTRYPOINT is a console script the image installs."""
    text = dockerfile.read_text()
    installed: set[str] = set()
    for source, _target in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)\s*$", text, flags=re.M):
        assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist in the build context"
        if source.startswith("packages/"):
            installed.add(Path(source).name)
    scripts = _console_scripts()
    for line in re.findall(r"^(?:CMD|ENTRYPOINT)\s+(\[.*\])\s*$", text, flags=re.M):
        command = yaml.safe_load(line)[0]
        if command.startswith("-"):
            continue
        assert command in scripts, f"{dockerfile.name}: {command} is not a console script of this repository"
        assert scripts[command] in installed, f"{dockerfile.name}: runs {command} of {scripts[command]}, which the image does not install"


def test_services_build_from_existing_files_and_set_known_settings() -> None:
    """Every build context and Dockerfile exists; every WFR_* variable set is read by the runtime (config, workers or bootstrap)."""
    document = _compose()
    sources = "\n".join(p.read_text() for p in (ROOT / "packages").glob("*/src/**/*.py"))
    for name, service in document["services"].items():
        build = service.get("build")
        if build:
            context = (COMPOSE / build["context"]).resolve()
            assert context.is_dir(), f"{name}: build context {build['context']} does not exist"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} does not exist"
        environment = service.get("environment") or {}
        for variable in environment if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]:
            if variable.startswith("WFR_") and not variable.startswith("WFR_SECRET_"):
                assert f'"{variable}"' in sources or f"'{variable}'" in sources, f"{name}: {variable} is not read by the runtime"
    for anchor in re.findall(r"^x-[\w-]+:", (COMPOSE / "compose.yaml").read_text(), flags=re.M):
        assert anchor  # extension fields are allowed by the specification (x-*)
