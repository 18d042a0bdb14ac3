"""CORS (Fetch standard): a browser app on a configured origin may call Puente and read what it needs."""

from __future__ import annotations

from .conftest import WEB_APP

PATIENT = {"resourceType": "Patient", "gender": "female", "birthDate": "2023-04-12"}


async def test_preflight_allows_a_configured_origin_with_fhir_headers(http):
    r = await http.options(
        "/fhir/Patient",
        headers={
            "Origin": WEB_APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, if-none-exist, prefer",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == WEB_APP
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "PATCH" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert {"authorization", "if-none-exist", "prefer", "if-match"} <= {h.strip() for h in allowed.split(",")}
    assert "access-control-allow-credentials" not in r.headers


async def test_a_create_exposes_location_and_etag_to_the_page(http):
    r = await http.post("/fhir/Patient", json=PATIENT, headers={"Origin": WEB_APP})
    assert r.status_code == 201
    assert r.headers["access-control-allow-origin"] == WEB_APP
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"location", "etag", "content-location", "last-modified", "x-request-id"} <= exposed
    assert "Origin" in r.headers["vary"]


async def test_errors_carry_cors_headers_too(http):
    r = await http.get("/fhir/Patient/nobody", headers={"Origin": WEB_APP})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == WEB_APP  # the page can read the OperationOutcome


async def test_an_origin_not_configured_gets_no_access(http):
    r = await http.get("/fhir/metadata", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    pre = await http.options(
        "/fhir/Patient", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 400
    assert pre.headers["content-type"].startswith("application/fhir+json")
    outcome = pre.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "origin" in outcome["issue"][0]["diagnostics"]
    assert "access-control-allow-origin" not in pre.headers


async def test_without_configured_origins_there_is_no_cors(client):
    r = await client.get("/fhir/metadata", headers={"Origin": WEB_APP})
    assert "access-control-allow-origin" not in r.headers
