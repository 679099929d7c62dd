"""The published JSON Schema and generated reference: current, and valid for every known definition."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from runtime_core.dsl import definition_json_schema, reference_markdown, validate_definition

from .conftest import OWN_SCENARIOS, ROOT, SHARED_SCENARIOS

VALIDATOR = jsonschema.Draft202012Validator(definition_json_schema())
REGEN = "regenerate with: wfr schema > docs/workflow-definition.schema.json && wfr schema --markdown > docs/dsl-reference.md"


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself is a valid JSON Schema."""
    jsonschema.Draft202012Validator.check_schema(definition_json_schema())


def test_docs_match_the_models() -> None:
    """docs/ carries exactly what the models generate."""
    assert json.loads((ROOT / "docs" / "workflow-definition.schema.json").read_text()) == definition_json_schema(), REGEN
    assert (ROOT / "docs" / "dsl-reference.md").read_text() == reference_markdown(), REGEN


def _definitions() -> list[object]:
    params: list[object] = []
    for path in sorted((ROOT / "docs" / "examples").glob("*.json")):
        if not path.name.endswith(".payload.json"):
            params.append(pytest.param(json.loads(path.read_text()), True, id=f"examples/{path.name}"))
    folders = [OWN_SCENARIOS] + ([SHARED_SCENARIOS] if SHARED_SCENARIOS.is_dir() else [])
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            scenario = json.loads(path.read_text())
            publishes = scenario.get("expect", {}).get("published", True)
            for index, document in enumerate(scenario["definitions"]):
                params.append(pytest.param(document, publishes, id=f"{folder.name}/{path.stem}[{index}]"))
    return params


@pytest.mark.parametrize(("document", "publishes"), _definitions())
def test_schema_agrees_with_the_models(document: dict[str, object], publishes: bool) -> None:
    """Every example and scenario definition the models accept, the schema accepts, and vice versa."""
    model, _problems = validate_definition(document)
    schema_ok = not list(VALIDATOR.iter_errors(document))
    assert schema_ok == (model is not None)
    if publishes:
        assert schema_ok, [e.message for e in VALIDATOR.iter_errors(document)]


def test_reference_documents_every_step_type() -> None:
    """The generated reference names every step type of the DSL."""
    text = reference_markdown()
    for kind in ("action.call", "transform.assign", "state.set", "time.wait", "event.wait", "human.task",
                 "control.if", "control.forEach", "control.tryCatch", "control.callWorkflow", "control.return"):
        assert f'"type": "{kind}"' in text
    assert Path(ROOT / "docs" / "dsl-reference.md").exists()
