"""Is this JSON a valid R4 resource?

The R4 JSON Schema, compiled once by fastjsonschema, decides. It is HL7's published schema with the
rules it leaves out added from the R4 StructureDefinitions (tools/generate_fhir_schema.py): JSON
types ("true" is not a boolean), unknown elements, required code bindings (gender "banana"),
primitive formats, real calendar dates, mandatory primitives (`Observation.status`), one type per
choice element (the open ones, of ~50 types, are checked here: as schema rules they took ~300 MB per
process), integer ranges. When it rejects a resource whose fault its compact message does not
name (which mandatory element is missing?), the `fhir.resources.R4B` model of the type explains it.
The models are not run on valid resources: they cost ~0.3 ms a resource, most of a write's
validation, and a test checks that they reject nothing the schema accepts.

Nested resources (contained, Bundle entries, Parameters) are validated one by one against their own
type, since the schema's any-resource rule would try every type.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import date
from importlib import resources
from typing import Any, NamedTuple

import fastjsonschema
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_mappings.ids import is_id
from fhir_mappings.outcomes import Invalid, Issue, NotFound
from fhir_mappings.resource_types import R4_RESOURCE_TYPES

_SCHEMA_MESSAGE = re.compile(r"^(data[^ ]*) (must .*|cannot .*)$", re.S)
# The schema's messages that do not say what is wrong: the model names the element instead.
_UNSPECIFIC = ("must contain", "cannot be validated")
CALENDAR_FORMAT = "calendar-date"  # tools/generate_fhir_schema.py puts it on date, dateTime and instant

_lock = threading.Lock()
# Resources of a large body that the API validated in a worker thread (off the event loop) for this
# request: the repository's validation of the same objects, later in the same task, is skipped.
_prevalidated: ContextVar[dict[int, Any] | None] = ContextVar("prevalidated", default=None)
_validators: dict[str, Callable[[Any], Any]] | None = None


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("fhir_mappings").joinpath("data/fhir.schema.json").read_text())
    return loaded


class _OpenChoices(NamedTuple):
    """What the validator checks of the open choice elements, which the schema leaves out."""

    entries: dict[str, tuple[str, ...]]  # resource type -> top-level keys leading to one besides Extension's
    extension_values: frozenset[str]  # Extension's value[x] properties


@functools.cache
def _open_choices() -> _OpenChoices:
    # Kept apart from the compiled validators: holding the whole parsed schema for these would cost
    # more memory than they take.
    schema = _schema()
    return _OpenChoices(
        {name: tuple(keys) for name, keys in schema["openChoiceEntries"].items()},
        frozenset(schema["openChoices"]["Extension"]),
    )


def _compile_validators() -> dict[str, Callable[[Any], Any]]:
    schema = _schema()
    root = {
        "$schema": schema["$schema"],
        "anyOf": [{"$ref": f"#/definitions/{t}"} for t in sorted(R4_RESOURCE_TYPES)],
        "definitions": schema["definitions"],
    }
    formats = {CALENDAR_FORMAT: is_calendar_date}
    # Compact exceptions: the detailed mode embeds whole expanded definitions (gigabytes of code).
    code = fastjsonschema.compile_to_code(root, formats=formats, detailed_exceptions=False)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<fhir-r4-schema>", "exec"), namespace)
    return {
        t: functools.partial(namespace[f"validate___definitions_{t.lower()}"], custom_formats=formats)
        for t in R4_RESOURCE_TYPES
    }


def is_calendar_date(value: str) -> bool:
    """Is the day of a date, dateTime or instant one the calendar has? The schema's pattern has
    checked the shape (YYYY, YYYY-MM or YYYY-MM-DD, then an optional time) but allows 2023-02-29."""
    if len(value) < 10:
        return True
    try:
        date(int(value[:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def warm_up() -> None:
    """Compile the schema now (about 3 s) rather than on the first request."""
    _schema_validator("Patient")
    _open_choices()


def _schema_validator(resource_type: str) -> Callable[[Any], Any]:
    global _validators
    if _validators is None:
        with _lock:
            if _validators is None:
                _validators = _compile_validators()
    return _validators[resource_type]


def check_resource_type(resource_type: str) -> None:
    """404 for a type in the URL that R4 does not define (e.g. an R5-only type)."""
    if resource_type not in R4_RESOURCE_TYPES:
        raise NotFound(
            f"Unknown resource type '{resource_type}': this server serves FHIR R4 (4.0.1) resource types",
            issues=[Issue(f"Resource type '{resource_type}' is not a FHIR R4 resource type", code="not-supported")],
        )


def check_body_type(resource: Any, expected_type: str) -> None:
    """The cheap part of validation that needs the URL: is the body a resource of the URL's type?"""
    given = resource.get("resourceType") if isinstance(resource, dict) else None
    if isinstance(given, str) and given in R4_RESOURCE_TYPES and given != expected_type:
        raise Invalid(
            f"resourceType '{given}' does not match the URL's type '{expected_type}'",
            issues=[_issue(f"resourceType must be '{expected_type}'", "invalid", "resourceType")],
        )


def validate_resource(resource: Any, expected_type: str | None = None) -> str:
    """Validate one resource (and the resources nested in it); return its type or raise `Invalid`."""
    if not isinstance(resource, dict):
        raise Invalid("The body must be a JSON object (a FHIR resource)", issues=[_issue("must be a JSON object")])
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise Invalid("The resource has no resourceType", issues=[_issue("resourceType is missing", "required")])
    if resource_type not in R4_RESOURCE_TYPES:
        raise Invalid(
            f"'{resource_type}' is not a FHIR R4 resource type",
            issues=[_issue(f"'{resource_type}' is not a FHIR R4 resource type", "not-supported", "resourceType")],
        )
    if expected_type is not None and resource_type != expected_type:
        raise Invalid(
            f"resourceType '{resource_type}' does not match the URL's type '{expected_type}'",
            issues=[_issue(f"resourceType must be '{expected_type}'", "invalid", "resourceType")],
        )
    known = _prevalidated.get()
    if known is not None and known.get(id(resource)) is resource:
        return resource_type
    problems = list(_problems(resource, resource_type))
    if problems:
        raise Invalid(problems[0].diagnostics, issues=problems)
    return resource_type


def mark_validated(resources: Iterable[Any]) -> None:
    """Record, for the current request's context, that these objects passed `validate_resource`
    (the identity is checked too, so a recycled id() matches nothing)."""
    _prevalidated.set({id(r): r for r in resources})


def _problems(resource: dict[str, Any], resource_type: str, prefix: str = "") -> Iterator[Issue]:
    path = prefix or resource_type
    resource_id = resource.get("id")
    if resource_id is not None and not is_id(resource_id):
        yield Issue(f"{path}.id: an id is 1-64 characters of A-Z a-z 0-9 - .", "value", expression=(f"{path}.id",))
        return
    try:
        _schema_validator(resource_type)(resource)
    except fastjsonschema.JsonSchemaValueException as exc:
        issue = _schema_issue(str(exc.message), path)
        if not any(words in issue.diagnostics for words in _UNSPECIFIC):
            yield issue
            return
        model_issues = list(_model_problems(resource, resource_type, path))
        yield from model_issues or [issue]
        return
    open_choice = _open_choice_problem(resource, resource_type, path)
    if open_choice is not None:
        yield open_choice
        return
    for child_path, child in _nested_resources(resource, path):
        child_type = child.get("resourceType") if isinstance(child, dict) else None
        if not isinstance(child_type, str) or child_type not in R4_RESOURCE_TYPES:
            yield Issue(f"{child_path}: not a FHIR R4 resource", "invalid", expression=(child_path,))
            continue
        yield from _problems(child, child_type, child_path)


def _open_choice_problem(resource: dict[str, Any], resource_type: str, path: str) -> Issue | None:
    """The open choices (~50 types: Extension.value[x], Task.input.value[x]...) take one type too; the
    schema leaves them out (tools/generate_fhir_schema.py). Extensions can be anywhere, and are
    walked here; the rare types with another open choice (Task with inputs, StructureDefinition...)
    go to their model, which also names an extension's fault."""
    rules = _open_choices()
    two_values = _two_extension_values(resource, rules.extension_values)
    if not two_values and not any(key in resource for key in rules.entries.get(resource_type, ())):
        return None
    issues = list(_model_problems(resource, resource_type, path))
    if issues:
        return issues[0]
    if two_values:  # a type without a model (Parameters, an R4 type that R4B dropped)
        return Issue(f"{path}: an extension holds more than one value[x]", "structure", expression=(path,))
    return None


def _two_extension_values(node: Any, values: frozenset[str]) -> bool:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and sum(1 for k in item if k in values) > 1:
                        return True
            if isinstance(value, dict | list) and _two_extension_values(value, values):
                return True
    elif isinstance(node, list):
        return any(isinstance(item, dict | list) and _two_extension_values(item, values) for item in node)
    return False


def _nested_resources(resource: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    for i, child in enumerate(resource.get("contained") or []):
        yield f"{path}.contained[{i}]", child
    if resource.get("resourceType") == "Bundle":
        for i, entry in enumerate(resource.get("entry") or []):
            if isinstance(entry, dict) and "resource" in entry:
                yield f"{path}.entry[{i}].resource", entry["resource"]
    if resource.get("resourceType") == "Parameters":
        yield from _parameter_resources(resource.get("parameter") or [], f"{path}.parameter")


def _parameter_resources(parameters: list[Any], path: str) -> Iterator[tuple[str, Any]]:
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            continue
        if "resource" in parameter:
            yield f"{path}[{i}].resource", parameter["resource"]
        yield from _parameter_resources(parameter.get("part") or [], f"{path}[{i}].part")


@functools.cache
def _model_class(resource_type: str) -> Any:
    """The R4B model of a type, or None for an R4 type that R4B dropped (found by importing, each time)."""
    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None


def _model_problems(resource: dict[str, Any], resource_type: str, path: str) -> Iterator[Issue]:
    model = _model_class(resource_type)
    if model is None:
        return  # an R4 type that R4B dropped: the R4 schema alone applies
    # Nested resources are validated separately, against their own type.
    shallow = {k: v for k, v in resource.items() if k != "contained"}
    if resource_type in ("Bundle", "Parameters"):
        return
    try:
        model.model_validate(shallow)
    except ValidationError as exc:
        for error in exc.errors()[:10]:
            location = _fhirpath(path, error.get("loc", ()))
            message = str(error.get("msg", "invalid"))
            code = "required" if error.get("type") == "missing" else "value"
            yield Issue(f"{location}: {message}", code, expression=(location,))
    except (TypeError, ValueError) as exc:  # the models raise these for some malformed input
        yield Issue(f"{path}: {exc}", "value", expression=(path,))


def _fhirpath(path: str, loc: tuple[Any, ...]) -> str:
    out = path
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("function-") and part != "__root__":
            out += f".{part}"
    return out


def _schema_issue(message: str, path: str) -> Issue:
    match = _SCHEMA_MESSAGE.match(message)
    if not match:
        return Issue(f"{path}: {message}", "structure", expression=(path,))
    location = path + match.group(1)[len("data") :]
    rule = match.group(2)
    if "must not contain" in rule:
        unknown = re.findall(r"'([^']+)'", rule)
        expressions = tuple(f"{location}.{name}" for name in unknown) or (location,)
        return Issue(f"Unknown element(s) {', '.join(expressions)}", "structure", expression=expressions)
    if "must not be there" in rule:
        return Issue(
            f"{location}: a choice element takes one type, and another type of it is given too",
            "structure",
            expression=(location,),
        )
    if CALENDAR_FORMAT in rule:
        return Issue(f"{location}: not a real calendar date", "value", expression=(location,))
    code = "required" if "must contain" in rule else "code-invalid" if "must be one of" in rule else "value"
    return Issue(f"{location} {rule}", code, expression=(location,))


def _issue(message: str, code: str = "structure", expression: str | None = None) -> Issue:
    return Issue(message, code, expression=(expression,) if expression else ())
