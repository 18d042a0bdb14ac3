"""Write the reference data the tests need under tests/data/, thinned from the full copies in ../shared/data.

The suite must run on a clean clone with nothing beside it, so it carries its own copy of what it reads:

- who-growth/: WHO's LMS tables, verbatim (the golden tests compare every row of them);
- fhir-r4/: HL7's R4 definitions, cut down to the fields `tools/generate_search_registry.py` reads
  (a test regenerates the committed search registry from them and expects it byte for byte);
- synthea-r4/corpus.json: one Bundle with a few Synthea resources of every distinct shape, instead of
  22 patients that repeat 47 shapes some 5,400 times.

Re-runnable and deterministic:

    uv run python tools/thin_test_data.py [--source ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data"
TARGET = ROOT / "tests" / "data"

# The WHO tables the clinical z-scores and the seed's growth table are built from.
WHO_FILES = (
    "weianthro.txt",
    "lenanthro.txt",
    "wflanthro.txt",
    "wfhanthro.txt",
    "bmianthro.txt",
    "hcanthro.txt",
    "acanthro.txt",
)

# What the search-registry generator reads of each kind of definition; everything else is dropped.
_ELEMENT_KEYS = ("path", "type", "contentReference", "binding")
_TYPE_KEYS = ("code", "targetProfile", "extension")
_SEARCH_PARAMETER_KEYS = {
    *("resourceType", "id", "url", "code", "base", "type", "expression", "description"),
    *("comparator", "target", "component"),
}

# Synthea keeps this many resources of each (type, set of element paths, first code) key.
PER_SHAPE = 3


def _dump(value: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def thin_structure_definitions(bundle: dict[str, Any]) -> dict[str, Any]:
    kept = []
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd["resourceType"] != "StructureDefinition":
            continue
        elements = []
        for element in sd["snapshot"]["element"]:
            thin = {k: element[k] for k in _ELEMENT_KEYS if k in element}
            if "type" in thin:
                thin["type"] = [{k: t[k] for k in _TYPE_KEYS if k in t} for t in thin["type"]]
            if "binding" in thin:
                thin["binding"] = {k: v for k, v in thin["binding"].items() if k in ("strength", "valueSet")}
            elements.append(thin)
        one = {"resourceType": sd["resourceType"], "id": sd["id"], "kind": sd["kind"], "abstract": sd.get("abstract")}
        kept.append({**one, "snapshot": {"element": elements}})
    return _bundle(kept)


def thin_value_sets(bundle: dict[str, Any]) -> dict[str, Any]:
    kept = []
    for entry in bundle["entry"]:
        vs = entry["resource"]
        if vs["resourceType"] != "ValueSet":
            continue
        includes = [
            {k: inc[k] for k in ("system", "valueSet") if k in inc} for inc in vs.get("compose", {}).get("include", [])
        ]
        kept.append({"resourceType": "ValueSet", "url": vs["url"], "compose": {"include": includes}})
    return _bundle(kept)


def thin_search_parameters(bundle: dict[str, Any]) -> dict[str, Any]:
    kept = [{k: v for k, v in e["resource"].items() if k in _SEARCH_PARAMETER_KEYS} for e in bundle["entry"]]
    return _bundle(kept)


def _leaf_paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _leaf_paths(v, f"{prefix}.{k}")}
    if isinstance(value, list):
        return {p for v in value for p in _leaf_paths(v, prefix)}
    return {prefix}


def _first_code(resource: dict[str, Any]) -> str | None:
    for key in ("code", "type", "vaccineCode", "medicationCodeableConcept", "class"):
        value = resource.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            coding = value.get("coding") or [value]
            return str(coding[0].get("code"))
    return None


def synthea_corpus(bundles: list[Path]) -> dict[str, Any]:
    seen: Counter[tuple[str, frozenset[str], str | None]] = Counter()
    kept = []
    for path in bundles:
        for entry in _load(path)["entry"]:
            resource = entry["resource"]
            key = (resource["resourceType"], frozenset(_leaf_paths(resource)), _first_code(resource))
            seen[key] += 1
            if seen[key] <= PER_SHAPE:
                kept.append(resource)
    return _bundle(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()
    source: Path = args.source
    for name in WHO_FILES:
        (TARGET / "who-growth").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "who-growth" / name, TARGET / "who-growth" / name)
    r4 = source / "fhir-r4"
    for name in ("profiles-resources.json", "profiles-types.json"):
        _dump(thin_structure_definitions(_load(r4 / name)), TARGET / "fhir-r4" / name)
    _dump(thin_value_sets(_load(r4 / "valuesets.json")), TARGET / "fhir-r4" / "valuesets.json")
    _dump(thin_search_parameters(_load(r4 / "search-parameters.json")), TARGET / "fhir-r4" / "search-parameters.json")
    corpus = synthea_corpus(sorted((source / "synthea-r4").glob("*.json")))
    _dump(corpus, TARGET / "synthea-r4" / "corpus.json")
    print(f"wrote {TARGET}: {len(corpus['entry'])} Synthea resources")


if __name__ == "__main__":
    main()
