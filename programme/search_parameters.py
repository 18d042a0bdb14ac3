"""Puente's own SearchParameters (R4 lacks them), served as SearchParameter resources.

The definitions live in `fhir_mappings/data/puente_search_parameters.json`; the search-registry
generator reads the same file, so what is served is what is indexed.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def puente_search_parameters() -> dict[str, dict[str, Any]]:
    """By id: every SearchParameter resource Puente defines (`puente-...`)."""
    text = resources.files("fhir_mappings").joinpath("data/puente_search_parameters.json").read_text(encoding="utf-8")
    return {entry["resource"]["id"]: entry["resource"] for entry in json.loads(text)["entry"]}
