"""Derive Puente's committed copies of the R4 JSON Schema and resource-type list.

Source: HL7 FHIR R4 4.0.1 `fhir.schema.json` (CC0), as in ../shared/data/fhir-r4/.
Run: `uv run python tools/generate_fhir_schema.py [path/to/fhir.schema.json]`.

Changes from the original, each because a validator cannot use it as published:
- descriptions are dropped (size);
- `integer64` and `Resource`, referenced but not defined in 4.0.1, are defined;
- properties that are not R4 elements (the redistributed file carries a server vendor's additions,
  e.g. `Meta.project`, `Reference.resource`) are removed, checked against the R4 StructureDefinitions;
- only the R4 resource types are kept (SubscriptionStatus is R4B and is dropped);
- `const` is written as a one-value `enum` (same rule; the validator renders it better);
- `ResourceList` (any resource, a oneOf over ~146 types) accepts any object: nested resources
  (contained, Bundle entries, Parameters) are validated one by one against their own type instead.

Rules added from the R4 StructureDefinitions, which the published schema leaves out, so that the
schema alone decides whether a resource is valid (the fhir.resources models only explain a failure):
- every complex type and resource is `"type": "object"` (the published schema lets `"code": "x"` or
  a null inside a list of CodeableConcepts through);
- a mandatory primitive element (`min` > 0, e.g. `Observation.status`, `Extension.url`) is present,
  as its value or as its `_element` sibling, and a mandatory choice element has one of its types;
- a choice element (`value[x]`) takes one type: each type's property excludes the others, except
  for the open choices (~50 types, e.g. `Extension.value[x]`), listed in `openChoices` and checked
  by the validator;
- `integer`, `positiveInt` and `unsignedInt` are 32-bit integers in their ranges, not any number;
- `date`, `dateTime` and `instant` carry the format `calendar-date` (Feb 30 matches the pattern): the
  validator supplies the check;
- `xhtml` (Narrative.div) is a string;
- lists of primitives and of their `_element` siblings may hold null, FHIR JSON's placeholder that
  lines a value up with its extension.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

from fhir_mappings.validation import CALENDAR_FORMAT

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "fhir-r4"
DEFAULT_SOURCE = SHARED / "fhir.schema.json"
# Vendor additions that the R4 StructureDefinitions in the same redistribution also carry.
NOT_R4 = {"Meta": {"project", "author", "account", "compartment"}, "SubscriptionStatus": None}
TARGET_DIR = HERE.parent / "fhir_mappings" / "data"


def _strip_descriptions(node: Any, *, is_properties: bool = False) -> Any:
    if isinstance(node, dict):
        # Inside "properties" the keys are element names, one of which may be "description".
        return {
            k: _strip_descriptions(v, is_properties=(k == "properties" and not is_properties))
            for k, v in node.items()
            if is_properties or k != "description"
        }
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def _const_to_enum(node: Any) -> None:
    # fastjsonschema's compact (non-detailed) mode cannot render "const" errors; a one-value enum is the same rule.
    if isinstance(node, dict):
        if "const" in node:
            node["enum"] = [node.pop("const")]
        for value in node.values():
            _const_to_enum(value)
    elif isinstance(node, list):
        for value in node:
            _const_to_enum(value)


# The value ranges of FHIR's integer types (FHIR R4 datatypes.html#primitive).
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "positiveInt": (1, 2**31 - 1), "unsignedInt": (0, 2**31 - 1)}
CALENDAR_TYPES = ("date", "dateTime", "instant")
# A choice of more types than this is an open one (Extension.value[x], ~50 types): "one type only" as
# schema rules would take every type's property excluding every other, 2,450 rules for one element,
# ~8 MB of compiled code and ~300 MB of memory per process. The validator checks those otherwise.
OPEN_CHOICE_TYPES = 12


def _definition_name(path: str) -> str:
    head, *rest = path.split(".")
    return "_".join([head] + [seg[0].upper() + seg[1:] for seg in rest])


def _r4_structure() -> tuple[dict[str, set[str]], list[str], dict[str, dict[str, list[str]]]]:
    """Child element names per schema definition, the concrete R4 resource types, and per type the
    top-level elements that are in the summary (`isSummary`) or mandatory (`min` > 0)."""
    children: dict[str, set[str]] = {}
    resource_types: list[str] = []
    summary: dict[str, dict[str, list[str]]] = {}
    for sd in _structure_definitions():
        if sd.get("kind") == "resource" and not sd.get("abstract") and sd["name"] not in NOT_R4:
            resource_types.append(sd["name"])
            top = [e for e in sd["snapshot"]["element"] if e["path"].count(".") == 1]
            summary[sd["name"]] = {
                "summary": sorted(e["path"].split(".")[1] for e in top if e.get("isSummary")),
                "mandatory": sorted(e["path"].split(".")[1] for e in top if e.get("min", 0) > 0),
            }
        for element in sd.get("snapshot", {}).get("element", []):
            if "." in element["path"]:
                parent, child = element["path"].rsplit(".", 1)
                children.setdefault(_definition_name(parent), set()).add(child)
    return children, sorted(resource_types), summary


@functools.cache
def _structure_definitions() -> tuple[dict[str, Any], ...]:
    """The base (not constraining) StructureDefinitions of the R4 resources and data types."""
    found = []
    for name in ("profiles-resources.json", "profiles-types.json"):
        for entry in json.loads((SHARED / name).read_text())["entry"]:
            sd = entry["resource"]
            if sd["resourceType"] == "StructureDefinition" and sd.get("derivation") != "constraint":
                found.append(sd)
    return tuple(found)


def _is_primitive(type_code: str) -> bool:
    return type_code[:1].islower() or type_code.startswith("http://hl7.org/fhirpath/System.")


def _schema_names(sd: dict[str, Any]) -> dict[str, str]:
    """The schema definition of each element that has children: the type itself, or for a backbone
    element `Type_Name` after the element's last segment, numbered from 1 when the name is taken
    (`CapabilityStatement.rest.interaction` is `CapabilityStatement_Interaction1`), as HL7 named them."""
    names: dict[str, str] = {}
    for element in sd["snapshot"]["element"]:
        if "." not in element["path"]:
            continue
        parent = element["path"].rsplit(".", 1)[0]
        if parent in names:
            continue
        if "." not in parent:
            names[parent] = parent
            continue
        head, last = parent.split(".", 1)[0], parent.rsplit(".", 1)[1]
        base = f"{head}_{last[0].upper()}{last[1:]}"
        name, n = base, 0
        while name in names.values():
            n += 1
            name = f"{base}{n}"
        names[parent] = name
    return names


def _element_rules() -> dict[str, dict[str, Any]]:
    """Per schema definition: its choice elements (name -> properties) and its mandatory primitive
    or choice elements (name -> the properties any one of which satisfies it)."""
    rules: dict[str, dict[str, Any]] = {}
    for sd in _structure_definitions():
        if "snapshot" not in sd:
            continue
        names = _schema_names(sd)
        for element in sd["snapshot"]["element"]:
            if "." not in element["path"] or not element.get("type"):
                continue
            parent, child = element["path"].rsplit(".", 1)
            codes = [t["code"] for t in element["type"]]
            rule = rules.setdefault(names[parent], {"choices": {}, "mandatory": {}})
            if child.endswith("[x]"):
                stem = child[:-3]
                variants = [stem + code[0].upper() + code[1:] for code in codes]
                rule["choices"][stem] = variants
                if element.get("min", 0) > 0:
                    siblings = [f"_{v}" for v, code in zip(variants, codes, strict=True) if _is_primitive(code)]
                    rule["mandatory"][stem] = variants + siblings
            elif element.get("min", 0) > 0 and all(_is_primitive(code) for code in codes):
                rule["mandatory"][child] = [child, f"_{child}"]
    return rules


def _add_element_rules(definitions: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Add the rules; return per definition its open choices' properties (e.g. Extension's
    `valueString`) with their stem."""
    rules = _element_rules()
    open_choices: dict[str, dict[str, str]] = {}
    for name, definition in definitions.items():
        props = definition.get("properties")
        if props is None:
            continue
        definition["type"] = "object"
        for prop, spec in props.items():
            items = spec.get("items") if spec.get("type") == "array" else None
            ref = (items or {}).get("$ref", "").rsplit("/", 1)[-1]
            if items is not None and (prop.startswith("_") or ref[:1].islower()):
                spec["items"] = {"anyOf": [items, {"type": "null"}]}
        rule = rules.get(name)
        if rule is None:
            continue
        exclusive: dict[str, Any] = {}
        for stem, variants in rule["choices"].items():
            present = [v for v in variants if v in props]
            if len(present) > OPEN_CHOICE_TYPES:
                open_choices.setdefault(name, {}).update((v, stem) for v in present)
                continue
            for variant in present:
                others = {other: False for other in present if other != variant}
                if others:
                    exclusive[variant] = {"properties": others}
        if exclusive:
            definition["dependencies"] = exclusive
        required = set(definition.get("required", ()))
        alternatives = [
            {"anyOf": [{"required": [p]} for p in options if p in props]}
            for element, options in sorted(rule["mandatory"].items())
            if element not in required and not required & set(options) and any(p in props for p in options)
        ]
        if alternatives:
            definition["allOf"] = alternatives
    return open_choices


def _refs(spec: Any) -> list[str]:
    """The definitions a property refers to (directly, as list items, or in an anyOf)."""
    found: list[str] = []
    if isinstance(spec, dict):
        if "$ref" in spec:
            found.append(spec["$ref"].rsplit("/", 1)[-1])
        for key in ("items", "anyOf"):
            value = spec.get(key)
            for part in value if isinstance(value, list) else [value] if value else []:
                found.extend(_refs(part))
    return found


def _open_choice_entries(
    definitions: dict[str, Any], open_choices: dict[str, dict[str, str]], resource_types: list[str]
) -> dict[str, list[str]]:
    """Per resource type, its top-level properties through which an open choice other than
    Extension's can be reached (Task.input, StructureDefinition.snapshot...)."""
    targets = {name for name in open_choices if name != "Extension"}
    reaches: dict[str, bool] = {}

    def reach(name: str, seen: frozenset[str]) -> bool:
        if name in targets:
            return True
        if name in reaches:
            return reaches[name]
        if name in seen or name == "Extension":
            return False
        props = definitions.get(name, {}).get("properties") or {}
        result = any(reach(r, seen | {name}) for spec in props.values() for r in _refs(spec))
        reaches[name] = result
        return result

    entries: dict[str, list[str]] = {}
    for name in resource_types:
        props = definitions[name].get("properties") or {}
        keys = sorted(
            p for p, spec in props.items() if p != "contained" and any(reach(r, frozenset({name})) for r in _refs(spec))
        )
        if keys:
            entries[name] = keys
    return entries


def _tighten_primitives(definitions: dict[str, Any]) -> None:
    # Choice elements (valueInteger, effectiveDateTime) carry a copy of the primitive's rule instead
    # of a $ref: point them at the definition, so that they get the tightened rule too.
    copies = {json.dumps(definitions[name], sort_keys=True): name for name in (*INTEGER_RANGES, *CALENDAR_TYPES)}
    for definition in definitions.values():
        for spec in (definition.get("properties") or {}).values():
            target = spec["items"] if spec.get("type") == "array" and "items" in spec else spec
            name = copies.get(json.dumps(target, sort_keys=True))
            if name is not None:
                target.clear()
                target["$ref"] = f"#/definitions/{name}"
    for name, (low, high) in INTEGER_RANGES.items():
        definitions[name] = {"type": "integer", "minimum": low, "maximum": high}
    for name in CALENDAR_TYPES:
        definitions[name]["format"] = CALENDAR_FORMAT
    definitions["xhtml"] = {"type": "string"}  # published as {} (its description dropped): anything passed


def _is_r4_property(prop: str, allowed: set[str]) -> bool:
    base = prop.lstrip("_")
    return (
        prop == "resourceType" or base in allowed or any(c.endswith("[x]") and base.startswith(c[:-3]) for c in allowed)
    )


def main(source: Path = DEFAULT_SOURCE) -> None:
    schema = json.loads(source.read_text())
    children, resource_types, summary = _r4_structure()
    definitions = _strip_descriptions(schema["definitions"])
    for name, definition in definitions.items():
        props = definition.get("properties")
        if props is None:
            continue
        vendor = NOT_R4.get(name) or set()
        allowed = children.get(name)
        for prop in list(props):
            if prop.lstrip("_") in vendor or (allowed is not None and not _is_r4_property(prop, allowed)):
                del props[prop]
    _const_to_enum(definitions)
    _tighten_primitives(definitions)
    open_choices = _add_element_rules(definitions)
    definitions.setdefault("integer64", definitions["integer"])
    definitions.setdefault("Resource", {"type": "object"})
    definitions["ResourceList"] = {"type": "object"}
    r4_resources = set(resource_types)
    known_types = {sd for sd in children} | r4_resources
    definitions = {
        name: d
        for name, d in definitions.items()
        if name in known_types
        or name.split("_")[0] in r4_resources
        or name[0].islower()
        or name in ("Resource", "ResourceList", "Element", "BackboneElement")
        or name.split("_")[0] in children
    }
    out = {
        "$schema": schema["$schema"],
        "source": "HL7 FHIR R4 4.0.1 fhir.schema.json (CC0); generated by tools/generate_fhir_schema.py",
        "definitions": definitions,
        # Open choice elements: their properties by stem, per definition, and per resource type the
        # top-level properties through which one other than Extension's can be reached (validation.py).
        "openChoices": {name: dict(sorted(v.items())) for name, v in sorted(open_choices.items())},
        "openChoiceEntries": _open_choice_entries(definitions, open_choices, resource_types),
    }
    (TARGET_DIR / "fhir.schema.json").write_text(json.dumps(out, separators=(",", ":"), sort_keys=True))
    (TARGET_DIR / "resource_types.json").write_text(
        json.dumps(
            {
                "source": "HL7 FHIR R4 4.0.1 fhir.schema.json discriminator (CC0)",
                "fhirVersion": "4.0.1",
                "resourceTypes": resource_types,
            },
            indent=1,
        )
        + "\n"
    )
    (TARGET_DIR / "summary_elements.json").write_text(
        json.dumps(
            {"source": "HL7 FHIR R4 4.0.1 StructureDefinitions (isSummary, min)", "types": summary},
            separators=(",", ":"),
            sort_keys=True,
        )
    )
    print(f"{len(resource_types)} resource types, {len(definitions)} definitions")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
