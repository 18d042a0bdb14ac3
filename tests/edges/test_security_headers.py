"""Security headers on every answer: API JSON, errors, health checks and HTML pages."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "status"), [("/fhir/metadata", 200), ("/fhir/Patient/nobody", 404), ("/healthz", 200), ("/nowhere", 404)]
)
async def test_every_answer_has_them(http, path, status):
    r = await http.get(path)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in r.headers  # served over http: HSTS would be ignored


async def test_a_validation_error_has_them(http):
    r = await http.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "banana"})
    assert r.status_code == 400
    assert r.headers["x-content-type-options"] == "nosniff"
