"""Publish-time validation: every problem of a definition, at once, with its step path."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema._utils
from pydantic import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from runtime_core.dsl._models import SEQUENCE_KEYS, WorkflowDefinition
from runtime_core.dsl._paths import PathError, parse_assign_path
from runtime_core.dsl._triggers import cron_problem, run_at_problem, timezone_problem
from runtime_core.expressions import ExpressionEngine, ExpressionRegexUnsupported, RegexUnsupported, compile_re2

__all__ = [
    "MAX_EXPRESSION_CHARS",
    "MAX_RANGE_ITEMS",
    "Problem",
    "ValidationContext",
    "canonical_json",
    "definition_hash",
    "parsed_definition",
    "schema_definition_problems",
    "schema_problems",
    "validate_definition",
]

#: Largest range literal (`[a..b]`) an expression may contain.
MAX_RANGE_ITEMS = 100_000
_RANGE_LITERAL = re.compile(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]")
#: Longest expression text. Workers compile an expression inside workflow code the first time they
#: evaluate it, at about 7 µs a character: 10,000 characters compile in about 70 ms.
MAX_EXPRESSION_CHARS = 10_000


@dataclass(frozen=True)
class Problem:
    """One publish problem: ``{severity, stepPath, stepId, code, message}``."""

    severity: str
    stepPath: str | None
    stepId: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form reported to authors."""
        return {
            "severity": self.severity,
            "stepPath": self.stepPath,
            "stepId": self.stepId,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class ValidationContext:
    """What validation needs to know about the world outside the definition."""

    is_action_registered: Callable[[str, int], bool] = lambda _id, _v: True
    is_workflow_published: Callable[[str, int], bool] = lambda _id, _v: True
    engine: ExpressionEngine = field(default_factory=ExpressionEngine)


def canonical_json(value: Any) -> str:
    """Serialise JSON canonically (sorted keys, no spaces) for hashing and comparison."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def definition_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a definition document."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


#: Parsed definitions shared by every run of the same pinned version (read-only once built),
#: keyed by the verified definition hash; bounded, oldest dropped first. This module is passed
#: through the workflow sandbox, so the cache is process-wide.
_PARSED: dict[str, WorkflowDefinition] = {}
_PARSED_MAX = 512


def parsed_definition(digest: str, document: dict[str, Any]) -> WorkflowDefinition:
    """The parsed model of a definition whose hash has been verified, from a shared cache."""
    parsed = _PARSED.get(digest)
    if parsed is None:
        parsed = WorkflowDefinition.model_validate(document)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)), None)
        _PARSED[digest] = parsed
    return parsed


# ------------------------------------------------------------------------- JSON Schema
#
# Schemas authors write (a definition's payloadSchema, a human.task's inline formSchema, a
# registered task type's form schema) are applied at launch and at task completion. Their
# regular expressions run with RE2 (linear time): jsonschema's own `pattern` and
# `patternProperties` use Python's backtracking `re`, so one catastrophic pattern made a launch
# take seconds. `pattern` and `patternProperties` are replaced through `validators.extend`; the
# helpers jsonschema uses for `additionalProperties` and `unevaluatedProperties` read the `re`
# module of `jsonschema._utils`, which is given RE2 while (and only while) this module validates.

_schema_local = threading.local()


class _SchemaRe:
    """The ``re`` that ``jsonschema._utils`` sees: RE2 while :func:`schema_problems` runs."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def search(pattern: Any, string: Any, flags: int = 0) -> Any:
        if getattr(_schema_local, "re2", False) and isinstance(pattern, str) and not flags:
            return compile_re2(pattern).search(string)
        return re.search(pattern, string, flags)


jsonschema._utils.re = _SchemaRe()


def _re2_pattern(validator: Any, patrn: Any, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and compile_re2(patrn).search(instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _re2_pattern_properties(validator: Any, pattern_properties: Any, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        compiled = compile_re2(pattern)
        for key, value in instance.items():
            if compiled.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_Re2Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _re2_pattern, "patternProperties": _re2_pattern_properties}
)


def _is_regex(instance: object) -> bool:
    """The metaschema's ``format: regex``, RE2's way (``\\p{L}`` is fine; what RE2 cannot run is
    reported separately, with a clearer message)."""
    if not isinstance(instance, str):
        return True
    try:
        compile_re2(instance)
    except RegexUnsupported:
        return True
    except re.error:
        return False
    return True


_SCHEMA_FORMATS = jsonschema.FormatChecker()
_SCHEMA_FORMATS.checkers = dict(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
_SCHEMA_FORMATS.checks("regex")(_is_regex)

#: Keywords whose value is one subschema, a map of subschemas, or a list of subschemas.
_ONE_SCHEMA = ("additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else", "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_SCHEMA_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_BASE_URI = "urn:wfr:schema"


def _schema_path(where: str, parts: tuple[Any, ...]) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    for key in _ONE_SCHEMA:
        if isinstance(schema.get(key), dict):
            yield (key,), schema[key]
    for key in _SCHEMA_MAP:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                if isinstance(sub, dict):
                    yield (key, name), sub
    for key in _SCHEMA_LIST:
        if isinstance(schema.get(key), list):
            for index, sub in enumerate(schema[key]):
                if isinstance(sub, dict):
                    yield (key, index), sub


def schema_definition_problems(schema: Any, where: str) -> list[tuple[str, str, str]]:
    """What keeps an authored JSON Schema (2020-12) from being applied safely, as
    ``(code, path, message)``; paths start at ``where`` (``payloadSchema``, ``config.formSchema``).

    Checks that it is a valid schema, that every ``pattern`` and ``patternProperties`` regex runs
    with RE2, and that every ``$ref``/``$dynamicRef`` is local to the schema (``#...``) and
    resolves: a remote reference would be fetched (or fail) at launch.
    """
    if not isinstance(schema, dict):
        return [("INVALID_SCHEMA", where, "must be a JSON Schema object")]
    problems: list[tuple[str, str, str]] = []
    try:
        for error in jsonschema.Draft202012Validator(
            jsonschema.Draft202012Validator.META_SCHEMA, format_checker=_SCHEMA_FORMATS
        ).iter_errors(schema):
            problems.append(("INVALID_SCHEMA", _schema_path(where, tuple(error.absolute_path)), f"is not a valid JSON Schema: {error.message}"))
            break  # the first one is enough to act on
    except Exception as err:  # a schema so odd that the metaschema check itself fails
        return [("INVALID_SCHEMA", where, f"is not a valid JSON Schema ({type(err).__name__}: {err})")]
    try:
        resource = DRAFT202012.create_resource(schema)
        registry: Registry[Any] = Registry().with_resource(resource.id() or _BASE_URI, resource).crawl()
    except Exception as err:
        return [*problems, ("INVALID_SCHEMA", where, f"its identifiers cannot be resolved ({type(err).__name__}: {err})")]
    stack: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [((), schema, resource.id() or _BASE_URI)]
    seen = 0
    while stack and seen < 10_000:
        parts, node, base = stack.pop()
        seen += 1
        if isinstance(node.get("$id"), str) and parts:
            base = urllib.parse.urljoin(base, node["$id"])
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            path = _schema_path(where, (*parts, keyword))
            if not ref.startswith("#"):
                problems.append(("SCHEMA_REF_NOT_LOCAL", path, f"{ref!r} is not a reference within this schema; only local references ('#/$defs/...') are supported: copy the referenced schema into $defs"))
                continue
            try:
                registry.resolver(base_uri=base).lookup(ref)
            except Exception as err:
                problems.append(("SCHEMA_REF_UNRESOLVABLE", path, f"{ref!r} does not resolve within this schema ({type(err).__name__}); point it at an existing subschema"))
        regexes: list[tuple[tuple[Any, ...], Any]] = []
        if isinstance(node.get("pattern"), str):
            regexes.append(((*parts, "pattern"), node["pattern"]))
        if isinstance(node.get("patternProperties"), dict):
            regexes.extend(((*parts, "patternProperties", key), key) for key in node["patternProperties"])
        for regex_parts, regex in regexes:
            try:
                compile_re2(regex)
            except RegexUnsupported as err:
                problems.append(("SCHEMA_REGEX_UNSUPPORTED", _schema_path(where, regex_parts), str(err)))
            except re.error as err:
                problems.append(("INVALID_SCHEMA", _schema_path(where, regex_parts), str(err)))
        stack.extend(((*parts, *sub_parts), sub, base) for sub_parts, sub in _subschemas(node))
    return problems


def _path_key(error: jsonschema.ValidationError) -> list[tuple[int, str]]:
    return [(0, f"{p:012d}") if isinstance(p, int) else (1, str(p)) for p in error.absolute_path]


def schema_problems(schema: dict[str, Any], instance: Any, root: str) -> list[dict[str, str]]:
    """Every way ``instance`` fails a JSON Schema (2020-12), as ``{path, message}`` sorted by path.

    Paths start at ``root`` (``payload.amount``, ``response.items[2]``), so launch and task errors
    name the failing field the same way. Regular expressions run with RE2. Never raises: a schema
    that cannot be applied (one published before these checks existed) is itself reported as a
    problem at ``root``.
    """
    try:
        _schema_local.re2 = True
        try:
            errors = sorted(_Re2Validator(schema).iter_errors(instance), key=_path_key)
        finally:
            _schema_local.re2 = False
        return [{"path": root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path), "message": e.message} for e in errors]
    except Exception as err:
        return [{"path": root, "message": f"the schema cannot be applied ({type(err).__name__}: {str(err)[:300]}); fix the schema and publish again"}]


def _shown(source: str, limit: int = 200) -> str:
    return repr(source if len(source) <= limit else source[: limit - 1] + "…")


def _iter_steps(steps: Any, path: str, loop_locals: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """Yield ``(stepPath, step dict, loop locals)`` for every step dict, depth first."""
    if not isinstance(steps, list):
        return
    for index, step in enumerate(steps):
        step_path = f"{path}[{index}]"
        if not isinstance(step, dict):
            continue
        yield step_path, step, loop_locals
        inner_locals = loop_locals
        if step.get("type") == "control.forEach" and isinstance(step.get("itemVar"), str):
            inner_locals = (*loop_locals, step["itemVar"])
        for key in SEQUENCE_KEYS:
            if key in step:
                yield from _iter_steps(step[key], f"{step_path}.{key}.steps", inner_locals)


def _steps_path_of_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | None, str | None, list[str]]:
    """Map a pydantic error location to ``(stepPath, stepId, remaining field names)``."""
    node = data
    step_path: str | None = None
    step_id: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(loc):
        key = loc[i]
        is_seq = key == "steps" or (key in SEQUENCE_KEYS and step_path is not None)
        if is_seq and i + 1 < len(loc) and isinstance(loc[i + 1], int) and isinstance(node, dict):
            seq = node.get(key)
            index = loc[i + 1]
            step_path = f"root.steps[{index}]" if step_path is None else f"{step_path}.{key}.steps[{index}]"
            node = seq[index] if isinstance(seq, list) and index < len(seq) else None
            step_id = node.get("id") if isinstance(node, dict) and isinstance(node.get("id"), str) else None
            rest = []
            i += 2
            # a discriminated union adds the tag to the location: skip it
            if i < len(loc) and isinstance(node, dict) and loc[i] == node.get("type"):
                i += 1
            continue
        rest.append(str(key))
        node = node.get(key) if isinstance(node, dict) and isinstance(key, str) else (
            node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None
        )
        i += 1
    return step_path, step_id, rest


def _schema_problems(data: Any, err: ValidationError) -> list[Problem]:
    problems = []
    for item in err.errors(include_url=False):
        step_path, step_id, rest = _steps_path_of_loc(data, tuple(item["loc"]))
        where = ".".join(rest)
        message = item["msg"]
        if item["type"] == "missing":
            message = f"field '{where}' is required"
        elif item["type"] == "extra_forbidden":
            message = f"unknown field '{where}' (remove it or check its spelling)"
        elif item["type"] == "union_tag_invalid":
            message = f"unknown step type {item.get('input', {}).get('type')!r}" if isinstance(item.get("input"), dict) else message
        elif where:
            message = f"{where}: {message}"
        problems.append(Problem("error", step_path or "root", step_id, f"SCHEMA_{item['type'].upper()}", message))
    return problems


def _expressions_in(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Yield ``(field, source)`` of every ``$expr`` inside a config value (not nested steps)."""
    if isinstance(value, dict):
        if set(value) == {"$expr"} and isinstance(value["$expr"], str):
            yield where, value["$expr"]
            return
        for key, inner in value.items():
            if key in SEQUENCE_KEYS:
                continue
            yield from _expressions_in(inner, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _expressions_in(inner, f"{where}[{index}]")


def _config_of(step: dict[str, Any]) -> dict[str, Any]:
    config = step.get("config")
    return config if isinstance(config, dict) else {}


def _assign_targets(step: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    config = _config_of(step)
    if isinstance(config.get("saveAs"), str):
        yield "config.saveAs", config["saveAs"]
    if isinstance(config.get("assign"), dict):
        for key in config["assign"]:
            yield f"config.assign.{key}", key
    if isinstance(step.get("saveAs"), str):
        yield "saveAs", step["saveAs"]
    if isinstance(step.get("captureErrorAs"), str):
        yield "captureErrorAs", step["captureErrorAs"]
    if isinstance(step.get("outputMapping"), dict):
        for key in step["outputMapping"]:
            yield f"outputMapping.{key}", key


def _trigger_problems(trigger: Any) -> list[Problem]:
    """A ``schedule`` trigger's instant, a ``recurring`` trigger's cron expression and zone (path ``trigger.<field>``)."""
    if not isinstance(trigger, dict):
        return []
    checks: list[tuple[str, Callable[[str], str | None], str]] = []
    if trigger.get("type") == "schedule":
        checks = [("runAt", run_at_problem, "INVALID_RUN_AT")]
    elif trigger.get("type") == "recurring":
        checks = [("cron", cron_problem, "INVALID_CRON"), ("timezone", timezone_problem, "INVALID_TIMEZONE")]
    problems = []
    for name, check, code in checks:
        value = trigger.get(name)
        message = check(value) if isinstance(value, str) else None  # a missing or non-string field is a schema problem
        if message is not None:
            problems.append(Problem("error", f"trigger.{name}", None, code, message))
    return problems


def _semantic_problems(data: dict[str, Any], ctx: ValidationContext) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}

    if "payloadSchema" in data and data["payloadSchema"] is not None:
        for code, path, message in schema_definition_problems(data["payloadSchema"], "payloadSchema"):
            problems.append(Problem("error", "root", None, "INVALID_PAYLOAD_SCHEMA" if code == "INVALID_SCHEMA" else code, f"{path}: {message}"))

    problems.extend(_trigger_problems(data.get("trigger")))

    for step_path, step, loop_locals in _iter_steps(data.get("steps"), "root.steps"):
        step_id = step.get("id") if isinstance(step.get("id"), str) else None
        step_type = step.get("type")
        if step_id is not None:
            if step_id in seen:
                problems.append(Problem("error", step_path, step_id, "DUPLICATE_STEP_ID", f"step id {step_id!r} is already used at {seen[step_id]}; step ids must be unique"))
            else:
                seen[step_id] = step_path
        for where, source in _expressions_in({k: v for k, v in step.items() if k not in ("id", "type", "name")}, ""):
            if len(source) > MAX_EXPRESSION_CHARS:
                problems.append(Problem("error", step_path, step_id, "EXPRESSION_TOO_LONG", f"{where}: the expression has {len(source):,} characters, more than {MAX_EXPRESSION_CHARS:,}; split it over several steps or move data into the payload"))
                continue
            parse_error = ctx.engine.parse_problem(source)
            if isinstance(parse_error, ExpressionRegexUnsupported):
                problems.append(Problem("error", step_path, step_id, "EXPRESSION_REGEX_UNSUPPORTED", f"{where}: {parse_error}"))
            elif parse_error is not None:
                problems.append(Problem("error", step_path, step_id, "EXPRESSION_PARSE", f"{where}: {_shown(source)} does not parse: {parse_error}"))
            for low, high in _RANGE_LITERAL.findall(source):
                if int(high) - int(low) + 1 > MAX_RANGE_ITEMS:
                    problems.append(Problem("error", step_path, step_id, "EXPRESSION_UNBOUNDED", f"{where}: range [{low}..{high}] has more than {MAX_RANGE_ITEMS:,} items; page through the data instead"))
        locals_here = loop_locals + ((step["itemVar"],) if step_type == "control.forEach" and isinstance(step.get("itemVar"), str) else ())
        for where, target in _assign_targets(step):
            # a forEach's own saveAs is assigned after the loop, outside its item scope
            visible = loop_locals if where == "saveAs" else locals_here
            try:
                parse_assign_path(target, visible)
            except PathError as err:
                problems.append(Problem("error", step_path, step_id, "NOT_ASSIGNABLE", f"{where}: {err}"))
        config = _config_of(step)
        if step_type == "action.call":
            action_id, version = config.get("actionId"), config.get("version")
            if isinstance(action_id, str) and isinstance(version, int) and not ctx.is_action_registered(action_id, version):
                problems.append(Problem("error", step_path, step_id, "ACTION_NOT_REGISTERED", f"action {action_id!r} version {version} is not registered; register it or fix actionId/version"))
        elif step_type == "control.callWorkflow":
            wf_id, wf_version = step.get("workflowId"), step.get("workflowVersion")
            if isinstance(wf_id, str) and isinstance(wf_version, int) and not ctx.is_workflow_published(wf_id, wf_version):
                problems.append(Problem("error", step_path, step_id, "WORKFLOW_NOT_PUBLISHED", f"workflow {wf_id!r} version {wf_version} is not published; publish it first or in the same batch"))
        elif step_type == "human.task" and config.get("formSchema") is not None:
            for code, path, message in schema_definition_problems(config["formSchema"], "config.formSchema"):
                problems.append(Problem("error", step_path, step_id, "INVALID_FORM_SCHEMA" if code == "INVALID_SCHEMA" else code, f"{path}: {message}"))
        elif step_type == "time.wait":
            has_duration, has_until = config.get("durationMs") is not None, config.get("until") is not None
            if has_duration == has_until:
                problems.append(Problem("error", step_path, step_id, "TIME_WAIT_DURATION_XOR_UNTIL", "time.wait needs exactly one of config.durationMs or config.until"))
        elif step_type == "control.tryCatch" and isinstance(step.get("captureErrorAs"), str):
            name = step["captureErrorAs"]
            uses = [src for _p, s, _l in _iter_steps(step.get("catch"), "") for _w, src in _expressions_in(s, "")]
            if not any(name in src for src in uses):
                problems.append(Problem("warning", step_path, step_id, "UNUSED_CAPTURE", f"captureErrorAs {name!r} is never read in catch"))

    # steps after a control.return in the same sequence never run
    def check_sequence(steps: Any, path: str) -> None:
        if not isinstance(steps, list):
            return
        returned = False
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            step_path = f"{path}[{index}]"
            if returned:
                problems.append(Problem("warning", step_path, step.get("id"), "UNREACHABLE_STEP", "this step follows a control.return in the same sequence and never runs"))
            if step.get("type") == "control.return":
                returned = True
            for key in SEQUENCE_KEYS:
                if key in step:
                    check_sequence(step[key], f"{step_path}.{key}.steps")

    check_sequence(data.get("steps"), "root.steps")
    return problems


def validate_definition(data: Any, ctx: ValidationContext | None = None) -> tuple[WorkflowDefinition | None, list[Problem]]:
    """Validate a definition document and report every problem.

    Args:
        data: The parsed JSON document.
        ctx: Registry and publication look-ups; permissive when omitted.

    Returns:
        ``(model, problems)``; ``model`` is ``None`` when the document does not fit the schema.
        Only problems of severity ``error`` block publishing.
    """
    ctx = ctx or ValidationContext()
    if not isinstance(data, dict):
        return None, [Problem("error", "root", None, "SCHEMA_NOT_AN_OBJECT", "a definition must be a JSON object")]
    model: WorkflowDefinition | None = None
    problems: list[Problem] = []
    try:
        model = WorkflowDefinition.model_validate(data)
    except ValidationError as err:
        problems.extend(_schema_problems(data, err))
    problems.extend(_semantic_problems(data, ctx))
    return model, problems
