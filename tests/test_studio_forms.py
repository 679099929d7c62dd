"""Run Studio's forms from a JSON Schema (pure): fields built, a posted form read back by the schema, errors placed."""

from __future__ import annotations

from runtime_bootstrap.studio._forms import Unparsed, build_form, flatten, parse_form, place_errors
from runtime_core.dsl._validate import schema_problems

SCHEMA = {
    "type": "object", "required": ["name", "count", "approval"],
    "properties": {
        "name": {"type": "string", "title": "Full name"},
        "count": {"type": "integer", "minimum": 1},
        "ratio": {"type": "number"},
        "priority": {"enum": ["low", "high", 3]},
        "urgent": {"type": "boolean"},
        "approval": {"type": "object", "required": ["decision"], "properties": {"decision": {"type": "boolean"}, "comments": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "lines": {"type": "array", "items": {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}},
        "extra": {"type": "object"},
        "a.b": {"type": "string"},
    },
}


def test_fields_of_each_kind() -> None:
    form = build_form(SCHEMA)
    kinds = {f.name: f.kind for f in form.walk()}
    assert kinds["f.name"] == "string" and kinds["f.count"] == "integer" and kinds["f.ratio"] == "number"
    assert kinds["f.priority"] == "enum" and kinds["f.urgent"] == "boolean" and kinds["f.approval"] == "object"
    assert kinds["f.approval.decision"] == "boolean" and kinds["f.tags"] == "array" and kinds["f.tags.0"] == "string"
    assert kinds["f.lines.0"] == "object" and kinds["f.lines.0.qty"] == "integer" and kinds["f.extra"] == "json" and kinds["f.a%2Eb"] == "string"
    by = {f.name: f for f in form.walk()}
    assert by["f.name"].label == "Full name" and by["f.name"].required and not by["f.ratio"].required
    assert [o for o, _ in by["f.priority"].options] == ["low", "high", "3"]
    assert by["f.tags"].template is not None and by["f.tags"].template.name == "f.tags.__i0__"
    assert by["f.lines"].template is not None and by["f.lines"].template.children[0].name == "f.lines.__i0__.sku"
    assert [s.name for s in by["f.tags"].spare] == ["f.tags.1", "f.tags.2", "f.tags.3"]


def test_a_posted_form_read_back_by_the_schema() -> None:
    posted = {
        "f.name": "Ada", "f.count": "3", "f.ratio": "0.5", "f.priority": "3", "f.urgent": "on",
        "f.approval.decision": "false", "f.approval.comments": "",
        "f.tags.0": "a", "f.tags.3": "", "f.tags.7": "b",
        "f.lines.2.sku": "X", "f.lines.2.qty": "2", "f.lines.5.sku": "", "f.lines.5.qty": "",
        "f.extra": '{"k": [1]}', "f.a%2Eb": "dot", "csrf": "ignored",
    }
    value, problems = parse_form(SCHEMA, posted)
    assert problems == []
    assert value == {"name": "Ada", "count": 3, "ratio": 0.5, "priority": 3, "urgent": True, "approval": {"decision": False},
                     "tags": ["a", "b"], "lines": [{"sku": "X", "qty": 2}], "extra": {"k": [1]}, "a.b": "dot"}
    assert flatten(SCHEMA, value)["f.lines.0.qty"] == "2"
    assert parse_form(SCHEMA, flatten(SCHEMA, value))[0] == value


def test_empty_optional_fields_are_omitted_and_bad_text_is_kept() -> None:
    value, problems = parse_form(SCHEMA, {"f.count": "1.5", "f.approval.comments": "", "f.extra": "{nope"})
    assert value["count"] == 1.5 and "approval" in value and value["approval"] == {}  # required object: kept, so its fields are reported
    assert isinstance(value["extra"], Unparsed) and problems[0]["path"] == "response.extra" and "not JSON" in problems[0]["message"]
    assert parse_form(SCHEMA, {"f.count": "abc"})[0]["count"] == "abc"
    assert "urgent" not in parse_form(SCHEMA, {})[0] or parse_form(SCHEMA, {})[0]["urgent"] is False
    assert parse_form({"type": "string"}, {"f": ""}) == (None, [])
    assert parse_form(None, {"f": '{"any": 1}'}) == ({"any": 1}, [])


def test_the_servers_errors_land_on_their_fields() -> None:
    value, _ = parse_form(SCHEMA, {"f.count": "0", "f.lines.4.qty": "x"})
    errors = [{"path": p["path"], "message": p["message"]} for p in schema_problems(SCHEMA, value, "response")]
    placed = place_errors(errors)
    assert "f.name" in placed and placed["f.name"] == ["required: fill this in"]
    assert "f.count" in placed and "f.lines.0.qty" in placed and "f.lines.0.sku" in placed and "f.approval.decision" in placed
    form = build_form(SCHEMA, flatten(SCHEMA, value), placed)
    by = {f.name: f for f in form.walk()}
    assert by["f.count"].errors and by["f.count"].value == "0" and by["f.count"].describedby == "fld-count-error"
    assert by["f.lines.0.qty"].value == "x" and by["f.lines.0.qty"].errors
    assert len(form.messages()) == len(errors)
    deep = build_form(SCHEMA, {}, place_errors([{"path": "response.extra.k[0]", "message": "bad"}, {"path": "response", "message": "root"}]))
    assert {f.name: m for f, m in deep.messages()} == {"f": "root", "f.extra": "bad"}
