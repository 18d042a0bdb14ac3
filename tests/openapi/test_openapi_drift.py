"""The published OpenAPI document is the app's own, valid, lint-clean, and describes FHIR as FHIR."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from api.openapi_examples import REQUEST_EXAMPLES
from fhir_mappings.resource_types import R4_RESOURCE_TYPES
from fhir_mappings.validation import validate_resource
from tools.generate_openapi import TARGET, render

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / "tools" / "openapi-lint"
REDOCLY = LINT / "node_modules" / ".bin" / "redocly"


@cache
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(TARGET.read_text())
    return document


def test_committed_openapi_matches_the_app():
    assert TARGET.read_text() == render(), "openapi/openapi.json drifted: run `uv run python tools/generate_openapi.py`"


def test_it_passes_openapi_spec_validator():
    validate(spec())


def test_it_passes_redocly_recommended_strict_with_no_error():
    if not REDOCLY.exists():
        pytest.fail(f"Redocly CLI is not installed: npm ci --prefix {LINT.relative_to(ROOT)} (.ci/run does)")
    assert shutil.which("node"), "Node.js (20.19 or newer) is needed for the linter"
    done = subprocess.run(
        [str(REDOCLY), "lint", "--config", str(LINT / "redocly.yaml"), "--format", "json", str(TARGET)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    report = json.loads(done.stdout)
    problems = [f"{p['ruleId']}: {p['message']}" for p in report["problems"]]
    assert not problems, problems[:20]
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_r4_type_has_its_paths_schema_and_typed_search():
    paths = spec()["paths"]
    for resource_type in R4_RESOURCE_TYPES:
        assert f"/fhir/{resource_type}/{{id}}" in paths, resource_type
        assert resource_type in spec()["components"]["schemas"], resource_type
    search = paths["/fhir/Patient"]["get"]
    assert search["operationId"] == "searchPatient"
    params = {p.get("name"): p for p in search["parameters"] if "name" in p}
    assert params["birthdate"]["schema"]["pattern"].startswith("^(eq|ne|gt|lt|ge|le|sa|eb|ap)?")
    assert "(date)" in params["birthdate"]["description"]
    assert {"family", "identifier", "general-practitioner"} <= params.keys()
    assert {"$ref": "#/components/parameters/_count"} in search["parameters"]
    assert search["responses"]["200"]["content"]["application/fhir+json"]["schema"] == {
        "$ref": "#/components/schemas/Bundle"
    }
    create = paths["/fhir/Patient"]["post"]
    assert create["requestBody"]["content"]["application/fhir+json"]["schema"]["$ref"].endswith("/Patient")
    assert "Location" in create["responses"]["201"]["headers"]
    assert create["responses"]["400"] == {"$ref": "#/components/responses/400"}
    patient = spec()["components"]["schemas"]["Patient"]
    assert patient["properties"]["gender"]["enum"] == ["male", "female", "other", "unknown"]


def test_patch_is_documented_with_the_media_types_the_server_takes():
    patch = spec()["paths"]["/fhir/Patient/{id}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/json-patch+json", "application/json"}


def test_security_schemes_servers_and_public_endpoints():
    document = spec()
    schemes = document["components"]["securitySchemes"]
    assert schemes["smart_backend"]["flows"]["clientCredentials"]["tokenUrl"] == "/auth/token"
    assert "private_key_jwt" in schemes["smart_backend"]["description"]
    flow = schemes["smart_app"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "/auth/authorize" and "PKCE" in schemes["smart_app"]["description"]
    assert {"openid", "fhirUser", "offline_access"} <= flow["scopes"].keys()
    assert document["servers"] == [{"url": "http://127.0.0.1:8000", "description": "This Puente"}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in document["paths"]["/fhir/Patient"]["get"]  # the global OAuth requirement


def test_operations_document_their_parameters_and_examples():
    paths = spec()["paths"]
    transaction = paths["/fhir"]["post"]["requestBody"]["content"]["application/fhir+json"]
    assert transaction["examples"]["household-visit"]["value"]["type"] == "transaction"
    forecast = paths["/fhir/$immds-forecast"]["post"]["requestBody"]["content"]["application/fhir+json"]
    assert forecast["schema"] == {"$ref": "#/components/schemas/Parameters"}
    validate_op = paths["/fhir/Observation/$validate"]["post"]
    assert {"$ref": "#/components/parameters/mode"} in validate_op["parameters"]


@pytest.mark.parametrize("resource_type", sorted(REQUEST_EXAMPLES))
def test_the_examples_are_valid_fhir(resource_type):
    _, _, example = REQUEST_EXAMPLES[resource_type]
    assert validate_resource(example) == resource_type


def test_the_document_stays_a_reasonable_size():
    compact = json.dumps(spec(), separators=(",", ":")).encode()
    assert len(compact) < 4_000_000, len(compact)  # 147 types; served gzipped (~170 KB)
