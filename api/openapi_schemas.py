"""The R4 JSON Schema (the one the validator uses) as OpenAPI 3.1 component schemas.

Only what the document refers to is kept (the resource types have paths, and their data types follow),
`$ref`s point into `#/components/schemas`. Two of the validator's rules are left to the server, as
generators and linters read them poorly: that a choice element takes one type (draft-07 `dependencies`;
as 2020-12 `dependentSchemas` it made Redocly reject valid examples), and that a mandatory choice element
has one of its types (an `allOf` of `anyOf`s). A mandatory primitive,
which the validator accepts as its value or its `_element` sibling (`status` or `_status`), is plainly
`required` here: what a client sends, and what a generated client asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

REF = "#/components/schemas/"
_DEFINITIONS = "#/definitions/"
# A validator's private format (real calendar dates); to a reader of the document it means nothing.
_PRIVATE_FORMATS = {"calendar-date"}


@cache
def _definitions() -> dict[str, Any]:
    text = resources.files("fhir_mappings").joinpath("data/fhir.schema.json").read_text()
    definitions: dict[str, Any] = json.loads(text)["definitions"]
    return definitions


def _required(rules: list[Any]) -> list[str]:
    """From the validator's `allOf`, the elements simply required (`status` or its `_status`)."""
    names = []
    for rule in rules:
        options = [tuple(o.get("required", ())) for o in rule.get("anyOf", ())]
        if len(options) == 2 and len(options[0]) == 1 and options[1] == (f"_{options[0][0]}",):
            names.append(options[0][0])
    return names


def _convert(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("allOf", "required") and isinstance(value, list):
                required = sorted({*node.get("required", ()), *_required(node.get("allOf", []))})
                if required:
                    out["required"] = required
            elif key == "$ref" and isinstance(value, str):
                out[key] = value.replace(_DEFINITIONS, REF)
            elif key == "dependencies" or (key == "format" and value in _PRIVATE_FORMATS):
                continue
            elif key == "properties":
                out[key] = {name: _convert(v) for name, v in value.items()}
            else:
                out[key] = _convert(value)
        return out
    if isinstance(node, list):
        return [_convert(v) for v in node]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF):
                yield value[len(REF) :]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def component_schemas(roots: Iterable[str]) -> dict[str, Any]:
    """The schemas of `roots` (definition names) and of everything they refer to, sorted by name."""
    definitions = _definitions()
    kept: dict[str, Any] = {}
    pending = [r for r in roots if r in definitions]
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        schema = _convert(definitions[name])
        kept[name] = schema
        pending.extend(r for r in _refs(schema) if r not in kept and r in definitions)
    return dict(sorted(kept.items()))


def referenced(document: Any) -> set[str]:
    """Names of the component schemas a document (or part of one) refers to."""
    return set(_refs(document))
