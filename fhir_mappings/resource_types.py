"""The R4 (4.0.1) resource types, from the committed list derived by tools/generate_fhir_schema.py."""

from __future__ import annotations

import json
from importlib import resources

FHIR_VERSION = "4.0.1"

R4_RESOURCE_TYPES: frozenset[str] = frozenset(
    json.loads(resources.files("fhir_mappings").joinpath("data/resource_types.json").read_text())["resourceTypes"]
)


def is_r4_resource_type(name: str) -> bool:
    return name in R4_RESOURCE_TYPES
