"""`_summary` and `_elements`: the subsets of a resource a client can ask for (FHIR R4 search.html#summary)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
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


def apply_elements(resource: dict[str, Any], names: list[str]) -> dict[str, Any]:
    spec = _elements().get(resource.get("resourceType", ""), {"summary": [], "mandatory": []})
    wanted = [n.split(".")[-1] for n in names]
    keep = {k for k in resource if k in _ALWAYS or _matches(k, wanted) or _matches(k, spec["mandatory"])}
    return _subsetted(resource, keep)
