"""The CapabilityStatement describes what the server really does (FHIR R4 http.html#capabilities)."""

from __future__ import annotations


async def test_capability_statement_is_generated_from_the_app(client):
    r = await client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    rest = cs["rest"][0]
    assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch", "history-system"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert "SubscriptionTopic" not in by_type and len(by_type) == 146
    patient = by_type["Patient"]
    assert {i["code"] for i in patient["interaction"]} == {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
    assert patient["conditionalCreate"] and patient["conditionalUpdate"]
    params = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert params["identifier"] == "token" and params["birthdate"] == "date"
    assert {op["name"] for op in patient["operation"]} >= {"nutrition-status", "growth", "immds-forecast"}
    audit = {i["code"] for i in by_type["AuditEvent"]["interaction"]}
    assert audit == {"read", "vread", "history-instance", "history-type", "search-type"}  # the server writes them
    assert "_has" in rest["documentation"] and "_lastUpdated=gt" in rest["documentation"]
