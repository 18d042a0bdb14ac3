"""`_summary` and `_elements`: the subsets of a resource a client can ask for (FHIR R4 search.html#summary)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from fhir_mappings.code_systems import V3_OBSERVATION_VALUE

SUBSETTED = {"system": V3_OBSERVATION_VALUE, "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def _elements() -> dict[str, dict[str, list[str]]]:
    data = resources.files("fhir_mappings").joinpath("data/summary_elements.json").read_text()
    types: dict[str, dict[str, list[str]]] = json.loads(data)["types"]
    return types


def _matches(key: str, names: list[str]) -> bool:
    plain = key.lstrip("_")
    return any(plain == n or (n.endswith("[x]") and plain.startswith(n[:-3])) for n in names)


def _subsetted(resource: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def apply_summary(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    spec = _elements().get(resource.get("resourceType", ""), {"summary": [], "mandatory": []})
    if mode == "true":
        names = spec["summary"] + spec["mandatory"]
        keep = {k for k in resource if k in _ALWAYS or _matches(k, names)}
    elif mode == "text":
        keep = {k for k in resource if k in (*_ALWAYS, "text") or _matches(k, spec["mandatory"])}
    elif mode == "data":
        keep = {k for k in resource if k != "text"}
    else:  # "count" has no resources to shape; "false" is everything
        return resource
    return _subsetted(resource, keep)


@cache
def _choice_names(resource_type: str) -> dict[str, str]:
    """JSON key of each choice element's type -> the element's name (`valueQuantity` -> `value`).

    `_elements=value` names the element `value[x]`, whatever type a resource gives it; the R4B model
    knows which keys are the types of which choice element, so `valueSet` is never taken for one."""
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):  # not a type R4B knows: nothing is a choice
        return {}
    names: dict[str, str] = {}
    for field_name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and isinstance(extra.get("one_of_many"), str):
            names[field.alias or field_name] = str(extra["one_of_many"])
    return names


def apply_elements(resource: dict[str, Any], names: list[str]) -> dict[str, Any]:
    resource_type = resource.get("resourceType", "")
    spec = _elements().get(resource_type, {"summary": [], "mandatory": []})
    wanted = [n.split(".")[-1] for n in names]
    choices = _choice_names(resource_type) if resource_type else {}
    keep = {
        k
        for k in resource
        if k in _ALWAYS
        or _matches(k, wanted)
        or _matches(k, spec["mandatory"])
        or choices.get(k.lstrip("_")) in wanted
    }
    return _subsetted(resource, keep)
