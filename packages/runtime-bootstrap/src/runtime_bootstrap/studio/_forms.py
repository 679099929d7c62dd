"""Forms built from a JSON Schema, and a posted form turned back into the JSON value by the schema.

A human task's ``formSchema`` becomes a tree of :class:`Field` s that ``_form.html`` renders:
strings, numbers and integers as inputs, booleans as a yes/no choice (required) or a checkbox
(optional), ``enum`` as a ``<select>``, objects as fieldsets, arrays as repeated groups. What the
schema does not describe as one of those (``oneOf``, ``$ref``, a free-form object) is a JSON
textarea, so every schema can be answered.

Field names encode the value's path: ``f`` is the response, ``f.approval.comments`` a property,
``f.items.0.name`` an array item's property (a ``.`` or ``%`` in a property name is written
``%2E``/``%25``). :func:`parse_form` reads a posted form back by the schema: numbers converted,
empty optional fields and empty array slots omitted (an
unticked optional checkbox is ``false``, but alone it does not make an optional object or an
array item count as filled in); text that cannot be converted is kept as
text, so the server's schema check reports it next to its field. The server is the only judge
of validity: :func:`place_errors` puts its errors (``response.items[2].name``) on their fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ROOT", "Field", "Unparsed", "build_form", "field_name", "flatten", "parse_form", "place_errors"]

#: The form field name of the whole response.
ROOT = "f"
#: The value path the operations layer reports errors of a task's response under.
_VALUE_ROOT = "response"
_MISSING: Any = object()
_REQUIRED = re.compile(r"^'(.*)' is a required property$")
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
#: Empty slots of an array shown when the browser runs no JavaScript (no "Add item" button).
SPARE_SLOTS = 3


class Unparsed(str):
    """Text of a JSON field that is not JSON: kept as typed so the form shows it again."""


def _escape(segment: str) -> str:
    return segment.replace("%", "%25").replace(".", "%2E")


def field_name(parent: str, segment: str | int) -> str:
    """The form field name of ``segment`` (a property or an array index) under ``parent``."""
    return f"{parent}.{_escape(str(segment))}"


def _field_id(name: str) -> str:
    return "fld" + re.sub(r"[^A-Za-z0-9_-]", "_", name[len(ROOT):].replace(".", "-"))


def _humanize(name: str) -> str:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:].lower()) if words else name


def _kind(schema: Any) -> str:
    """What a schema is answered with: object, array, enum, string, number, integer, boolean or json."""
    if not isinstance(schema, dict):
        return "json"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "enum"
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else None
    if kind in ("string", "number", "integer", "boolean"):
        return str(kind)
    if kind == "object" and isinstance(schema.get("properties"), dict) and schema["properties"]:
        return "object"
    if kind == "array" and isinstance(schema.get("items"), dict) and "prefixItems" not in schema:
        return "array"
    return "json"


def _option_value(member: Any) -> str:
    return member if isinstance(member, str) else json.dumps(member)


@dataclass
class Field:
    """One field of a form built from a schema (a tree: objects and arrays hold their children)."""

    kind: str
    name: str
    label: str
    schema: dict[str, Any]
    required: bool = False
    description: str | None = None
    value: str = ""
    errors: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    spare: list[Field] = field(default_factory=list)
    template: Field | None = None
    depth: int = 0
    next_index: int = 0
    item_number: str = ""

    @property
    def id(self) -> str:
        """The element id of the field's input (or fieldset)."""
        return _field_id(self.name)

    @property
    def describedby(self) -> str:
        """The ids of the field's hint and error message, for ``aria-describedby``."""
        ids = ([f"{self.id}-hint"] if self.description else []) + ([f"{self.id}-error"] if self.errors else [])
        return " ".join(ids)

    @property
    def placeholder(self) -> str:
        """An array's item index placeholder in its ``<template>`` (one per nesting depth)."""
        return f"__i{self.depth}__"

    @property
    def number_placeholder(self) -> str:
        """An array's item number (index + 1) placeholder in its ``<template>``."""
        return f"__n{self.depth}__"

    @property
    def input_type(self) -> str:
        """The ``<input type>`` of a scalar field."""
        if self.kind in ("number", "integer"):
            return "number"
        fmt = self.schema.get("format")
        return {"date": "date", "email": "email", "uri": "url", "time": "time"}.get(str(fmt), "text")

    @property
    def multiline(self) -> bool:
        """Whether a string field is long enough for a ``<textarea>``."""
        limit = self.schema.get("maxLength")
        return self.kind == "string" and self.input_type == "text" and isinstance(limit, int) and limit > 120

    @property
    def step(self) -> str:
        """The ``step`` of a number input."""
        return "1" if self.kind == "integer" else "any"

    @property
    def options(self) -> list[tuple[str, str]]:
        """An enum's options as (value, label)."""
        return [(_option_value(m), m if isinstance(m, str) else json.dumps(m)) for m in self.schema.get("enum", [])]

    def messages(self) -> list[tuple[Field, str]]:
        """Every error shown in this form, with the field it shows on, in the form's order."""
        return [(f, message) for f in self.walk() for message in f.errors]

    def walk(self) -> list[Field]:
        """This field and every field under it (items, not the template nor the spare slots)."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


def _indices(values: Mapping[str, Any], name: str) -> list[int]:
    prefix = name + "."
    found = set()
    for key in values:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit() and len(head) < 7:
                found.add(int(head))
    return sorted(found)


def _build(schema: Any, name: str, label: str, required: bool, values: Mapping[str, Any], depth: int, number: str = "") -> Field:
    kind = _kind(schema)
    sch: dict[str, Any] = schema if isinstance(schema, dict) else {}
    title = sch.get("title")
    found = Field(kind=kind, name=name, label=str(title) if isinstance(title, str) and title else label, schema=sch, required=required,
                  description=str(sch["description"]) if isinstance(sch.get("description"), str) else None, depth=depth, item_number=number)
    if kind == "object":
        needed = set(sch.get("required") or [])
        for prop, sub in sch["properties"].items():
            found.children.append(_build(sub, field_name(name, prop), _humanize(str(prop)), prop in needed, values, depth))
    elif kind == "array":
        items = sch["items"]
        item_label = found.label if _kind(items) != "object" else "Item"
        indices = _indices(values, name)
        if not indices:
            indices = list(range(max(1, int(sch.get("minItems") or 0) if isinstance(sch.get("minItems"), int) else 1)))
        found.children = [_build(items, field_name(name, i), item_label, False, values, depth + 1, str(n + 1)) for n, i in enumerate(indices)]
        found.next_index = max(indices) + 1
        found.spare = [_build(items, field_name(name, found.next_index + k), item_label, False, values, depth + 1, str(len(indices) + k + 1))
                       for k in range(SPARE_SLOTS)]
        found.template = _build(items, field_name(name, found.placeholder), item_label, False, {}, depth + 1, found.number_placeholder)
    else:
        raw = values.get(name)
        found.value = "" if raw is None else str(raw)
    return found


def build_form(schema: Any, values: Mapping[str, Any] | None = None, errors: Mapping[str, list[str]] | None = None) -> Field:
    """The form of ``schema``, filled with ``values`` (field name → text) and showing ``errors``.

    Errors are keyed by field name; one whose field is not in the form (an array item the form
    no longer has, a property inside a JSON field) shows on the nearest field above it.
    """
    root = _build(schema, ROOT, "Response", True, values or {}, 0)
    by_name = {f.name: f for f in root.walk()}
    for name, messages in (errors or {}).items():
        target = name
        while target not in by_name and "." in target:
            target = target.rsplit(".", 1)[0]
        by_name.get(target, root).errors.extend(messages)
    return root


def parse_form(schema: Any, form: Mapping[str, Any]) -> tuple[Any, list[dict[str, str]]]:
    """The JSON value a posted form stands for, by the schema, and the fields that are not JSON.

    Returns:
        ``(value, problems)``: the value (``None`` when nothing was filled in and the schema is
        not an object), and a ``{path, code, message}`` for every JSON field whose text is not
        JSON (such a field's value is its :class:`Unparsed` text).
    """
    problems: list[dict[str, str]] = []
    value, _ = _parse(schema, form, ROOT, True, _VALUE_ROOT, problems)
    return (None if value is _MISSING else value), problems


def _text(form: Mapping[str, Any], name: str) -> str:
    raw = form.get(name)
    return raw if isinstance(raw, str) else ""


def _parse(schema: Any, form: Mapping[str, Any], name: str, required: bool, path: str, problems: list[dict[str, str]]) -> tuple[Any, bool]:
    """``(value or _MISSING, whether the user filled anything in)``."""
    kind = _kind(schema)
    if kind == "object":
        needed = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        filled = False
        for prop, sub in schema["properties"].items():
            value, was_filled = _parse(sub, form, field_name(name, prop), prop in needed, f"{path}.{prop}", problems)
            if value is not _MISSING:
                out[prop] = value
            filled = filled or was_filled
        return (out, filled) if filled or required else (_MISSING, False)
    if kind == "array":
        items: list[Any] = []
        for index in _indices(form, name):
            value, was_filled = _parse(schema["items"], form, field_name(name, index), False, f"{path}[{len(items)}]", problems)
            if was_filled and value is not _MISSING:
                items.append(value)
        return (items, bool(items)) if items or required else (_MISSING, False)
    text = _text(form, name)
    if kind == "boolean":
        if not required:  # a checkbox: unchecked is false, but fills nothing in
            return (True, True) if text else (False, False)
        return {"true": (True, True), "false": (False, True)}.get(text, (_MISSING, False))
    if text == "":
        return _MISSING, False
    if kind == "enum":
        for member in schema["enum"]:
            if _option_value(member) == text:
                return member, True
        return text, True
    if kind in ("number", "integer"):
        stripped = text.strip()
        if re.fullmatch(r"-?\d{1,300}", stripped):
            return int(stripped), True
        try:
            number = float(stripped)
        except ValueError:
            return text, True  # kept as typed: the schema check says it is not a number
        if number != number or number in (float("inf"), float("-inf")):
            return text, True
        return (int(number) if kind == "integer" and number.is_integer() else number), True
    if kind == "json":
        if not text.strip():
            return _MISSING, False
        try:
            return json.loads(text), True
        except ValueError as err:
            problems.append({"path": path, "code": "INVALID_JSON", "message": f"not JSON ({err}): write a JSON value, e.g. {{\"key\": \"value\"}} or [1, 2]"})
            return Unparsed(text), True
    return text, True


def flatten(schema: Any, value: Any, name: str = ROOT, required: bool = True) -> dict[str, str]:
    """The form fields (name → text) that show ``value`` in the form of ``schema``.

    Array items are numbered from 0, as in ``value``, so error paths of ``value`` name them.
    """
    out: dict[str, str] = {}
    kind = _kind(schema)
    if value is None and kind != "json":
        return out
    if kind == "object":
        if isinstance(value, dict):
            needed = set(schema.get("required") or [])
            for prop, sub in schema["properties"].items():
                if prop in value:
                    out.update(flatten(sub, value[prop], field_name(name, prop), prop in needed))
        return out
    if kind == "array":
        if isinstance(value, list):
            for index, item in enumerate(value):
                out.update(flatten(schema["items"], item, field_name(name, index), False))
        return out
    if kind == "boolean":
        if value is True:
            out[name] = "true" if required else "on"
        elif value is False and required:
            out[name] = "false"
        return out
    if kind == "json":
        out[name] = str(value) if isinstance(value, Unparsed) else json.dumps(value, indent=2, ensure_ascii=False)
        return out
    if kind == "enum":
        out[name] = value if isinstance(value, str) else _option_value(value)
        return out
    out[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def place_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Errors of the operations layer (paths like ``response.items[2].name``) keyed by field name.

    A "'x' is a required property" error (reported on the object) goes to the missing property.
    """
    placed: dict[str, list[str]] = {}
    for error in errors:
        path = str(error.get("path") or _VALUE_ROOT)
        message = str(error.get("message") or error.get("code") or "invalid")
        name = ROOT
        if path.startswith(_VALUE_ROOT):
            rest = path[len(_VALUE_ROOT):]
            for prop, index in _PATH_TOKEN.findall(rest):
                name = field_name(name, prop if prop else int(index))
        missing = _REQUIRED.match(message)
        if missing:
            name = field_name(name, missing.group(1))
            message = "required: fill this in"
        placed.setdefault(name, []).append(message)
    return placed
