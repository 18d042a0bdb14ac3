"""The published OpenAPI document is the app's own, and it describes FHIR routes as FHIR."""

from __future__ import annotations

import json

from tools.generate_openapi import TARGET, render


def test_committed_openapi_matches_the_app():
    assert TARGET.read_text() == render(), "openapi/openapi.json drifted: run `uv run python tools/generate_openapi.py`"


def test_fhir_routes_declare_fhir_json_and_operation_outcomes():
    spec = json.loads(TARGET.read_text())
    read = spec["paths"]["/fhir/{resource_type}/{resource_id}"]["get"]
    assert "application/fhir+json" in read["responses"]["200"]["content"]
    assert "OperationOutcome" in json.dumps(read["responses"]["404"])
    create = spec["paths"]["/fhir/{resource_type}"]["post"]
    assert "application/fhir+json" in create["requestBody"]["content"]
