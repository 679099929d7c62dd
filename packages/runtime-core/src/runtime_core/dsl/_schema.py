"""The DSL's machine-readable JSON Schema and its generated Markdown reference.

Both are derived from the pydantic models, so field documentation lives in one place.
"""

from __future__ import annotations

from typing import Any

from runtime_core.dsl._models import WorkflowDefinition

__all__ = ["SCHEMA_ID", "definition_json_schema", "reference_markdown"]

SCHEMA_ID = "urn:workflow-runtime:workflow-definition:v1"

#: Reference order: the definition, the step kinds (union order), then supporting models.
_ORDER = (
    "WorkflowDefinition",
    "ActionCallStep", "TransformAssignStep", "StateSetStep", "TimeWaitStep", "EventWaitStep", "HumanTaskStep",
    "IfStep", "ForEachStep", "TryCatchStep", "CallWorkflowStep", "ReturnStep",
    "ActionCallConfig", "AssignConfig", "StateSetConfig", "TimeWaitConfig", "EventWaitConfig", "EventFilter", "HumanTaskConfig",
    "RetryPolicy", "OnErrorPolicy", "EventTrigger", "ScheduleTrigger", "RecurringTrigger", "Expression",
)


def definition_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a workflow definition."""
    schema = WorkflowDefinition.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "Authored workflow definition (runtime semantics v1)",
    }


def _anchor(name: str) -> str:
    return name.lower()


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "const" in prop:
        return f"`{prop['const']!r}`".replace("'", '"')
    if "enum" in prop:
        return " \\| ".join(f'`"{v}"`' for v in prop["enum"])
    if "anyOf" in prop or "oneOf" in prop:
        options = [o for o in prop.get("anyOf", prop.get("oneOf", [])) if o.get("type") != "null"]
        if "discriminator" in prop or len(options) > 3:
            return "step" if any("Step" in o.get("$ref", "") for o in options) else "one of " + ", ".join(_type_of(o) for o in options)
        return " \\| ".join(_type_of(o) for o in options)
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type_of(prop.get('items', {}))}"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"object of {_type_of(extra)}"
        return "object"
    if kind is None:
        return "any JSON value"
    return str(kind)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _constraints(prop: dict[str, Any]) -> str:
    out = []
    bounds = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("minLength", "min length"), ("maxLength", "max length"))
    for key, label in bounds:
        if key in prop:
            out.append(f"{label} {_number(prop[key])}")
    for option in prop.get("anyOf", []):
        for key, label in bounds:
            if key in option:
                out.append(f"{label} {_number(option[key])}")
    if "pattern" in prop:
        out.append(f"pattern `{prop['pattern']}`")
    return "; ".join(out)


def reference_markdown() -> str:
    """The DSL reference, generated from the models' fields and descriptions."""
    schema = definition_json_schema()
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    defs["WorkflowDefinition"] = {k: v for k, v in schema.items() if k not in ("$defs", "$schema", "$id", "title")} | {"description": WorkflowDefinition.__doc__}
    lines = [
        "# DSL reference (generated)",
        "",
        "Generated from the pydantic models in `runtime_core.dsl` by `wfr schema --markdown`; do not edit by hand.",
        "The machine-readable form is [workflow-definition.schema.json](workflow-definition.schema.json) (`wfr schema`).",
        "Unknown keys are rejected everywhere. Semantics: `../shared/spec/DSL.md` and [dsl.md](dsl.md).",
        "",
    ]
    for name in _ORDER:
        model = defs[name]
        props: dict[str, Any] = model.get("properties", {})
        kind = props.get("type", {}).get("const")
        lines.append(f"## {name}")
        lines.append("")
        if kind:
            lines.append(f"`\"type\": \"{kind}\"` — {(model.get('description') or '').strip()}")
        else:
            lines.append((model.get("description") or "").strip())
        lines.append("")
        lines.append("| field | type | required | default | description |")
        lines.append("| --- | --- | --- | --- | --- |")
        required = set(model.get("required", []))
        for field_name, prop in props.items():
            default = "" if "default" not in prop or prop["default"] is None else f"`{prop['default']!r}`".replace("'", '"').replace("True", "true").replace("False", "false")
            text = (prop.get("description") or "").replace("|", "\\|")
            extra = _constraints(prop)
            if extra:
                text = f"{text} ({extra})" if text else extra
            lines.append(f"| `{field_name}` | {_type_of(prop)} | {'yes' if field_name in required else ''} | {default} | {text} |")
        lines.append("")
    return "\n".join(lines).replace("``", "`") + "\n"
