"""Generate bulk/data/patient_compartment.json from HL7's R4 Patient CompartmentDefinition.

Run from the repository root (re-runnable; the output is deterministic):

    uv run python tools/generate_patient_compartment.py [--source ../shared/data/fhir-r4]

It keeps, for each resource type in the compartment, the search parameters that put a resource of
that type in a patient's record (`Observation`: subject, performer). Types without parameters are
not in the compartment and are left out. The source is compartmentdefinition-patient.json of FHIR
R4 4.0.1 (CC0), as listed in that folder's README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bulk" / "data" / "patient_compartment.json"


def generate(source: Path) -> dict[str, object]:
    definition = json.loads((source / "compartmentdefinition-patient.json").read_text())
    types = {entry["code"]: sorted(entry["param"]) for entry in definition["resource"] if entry.get("param")}
    return {
        "source": f"{definition['url']} (FHIR R4 4.0.1, compartmentdefinition-patient.json; CC0)",
        "generator": "tools/generate_patient_compartment.py",
        "types": dict(sorted(types.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "fhir-r4")
    args = parser.parse_args()
    OUTPUT.write_text(json.dumps(generate(args.source), indent=1) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
