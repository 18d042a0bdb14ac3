"""batch and transaction Bundles (FHIR R4 http.html#transaction), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json

from tests.fixtures.builders import DNI, patient, weight


def tx(*entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource, full_url=None, if_none_exist=None):
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        entry["fullUrl"] = full_url
    if if_none_exist:
        entry["request"]["ifNoneExist"] = if_none_exist
    return entry


async def total(client, resource_type):
    return (await client.get(f"/fhir/{resource_type}/_history")).json()["total"]


async def test_transaction_resolves_urn_uuid_everywhere(client):
    mother = "urn:uuid:11111111-1111-4111-8111-111111111111"
    child = "urn:uuid:22222222-2222-4222-8222-222222222222"
    obs = weight(child)
    obs["subject"] = {"reference": child}
    obs["performer"] = [{"reference": mother}]
    obs["extension"] = [{"url": "https://puente.example.org/x", "valueReference": {"reference": mother}}]
    related = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": child},
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
    }
    bundle = tx(post(obs), post(related), post(patient(), mother), post(patient(), child))
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created"] * 4
    child_location = body["entry"][3]["response"]["location"]
    child_ref = "/".join(child_location.split("/")[:2])
    mother_ref = "/".join(body["entry"][2]["response"]["location"].split("/")[:2])
    stored = (await client.get(f"/fhir/{body['entry'][0]['response']['location'].rsplit('/_history', 1)[0]}")).json()
    assert stored["subject"]["reference"] == child_ref
    assert stored["performer"][0]["reference"] == mother_ref
    assert stored["extension"][0]["valueReference"]["reference"] == mother_ref
    assert body["entry"][0]["response"]["etag"] == 'W/"1"'
    assert body["entry"][0]["response"]["lastModified"]


async def test_failing_entry_rolls_back_everything(client):
    before = await total(client, "Patient")
    bad = {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}
    r = await client.post("/fhir", json=tx(post(patient()), post(patient()), post(bad)))
    assert r.status_code == 400
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2]" in outcome["issue"][0]["diagnostics"]
    assert await total(client, "Patient") == before


async def test_failure_late_in_processing_rolls_back(client):
    """The DELETE and POSTs succeed, then a PUT with a stale ifMatch fails: nothing remains."""
    existing = (await client.post("/fhir/Patient", json=patient())).json()
    victim = (await client.post("/fhir/Patient", json=patient())).json()
    before = await total(client, "Patient")
    put = {
        "resource": {**patient(), "id": existing["id"]},
        "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"7"'},
    }
    delete = {"request": {"method": "DELETE", "url": f"Patient/{victim['id']}"}}
    r = await client.post("/fhir", json=tx(post(patient()), put, delete))
    assert r.status_code == 412
    assert await total(client, "Patient") == before
    assert (await client.get(f"/fhir/Patient/{victim['id']}")).status_code == 200


async def test_unresolved_urn_fails(client):
    obs = weight("x")
    obs["subject"] = {"reference": "urn:uuid:33333333-3333-4333-8333-333333333333"}
    r = await client.post("/fhir", json=tx(post(obs)))
    assert r.status_code == 400


async def test_processing_order_and_response_order(client):
    existing = (await client.post("/fhir/Patient", json=patient())).json()
    get = {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}}
    delete = {"request": {"method": "DELETE", "url": f"Patient/{existing['id']}"}}
    r = await client.post("/fhir", json=tx(get, delete))
    # GET runs after DELETE, so it sees the deletion and the whole transaction fails with 410.
    assert r.status_code == 410
    r = await client.post("/fhir", json=tx(delete, post(patient())))
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["204 No Content", "201 Created"]


async def test_batch_entries_are_independent(client):
    bad = {"resourceType": "Patient", "gender": "banana"}
    missing = {"request": {"method": "GET", "url": "Patient/missing"}}
    r = await client.post("/fhir", json=tx(post(patient()), post(bad), missing, kind="batch"))
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert r.json()["type"] == "batch-response"
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"] == "400"
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["response"]["status"] == "404"
    assert (
        await client.get(f"/fhir/{entries[0]['response']['location'].rsplit('/_history', 1)[0]}")
    ).status_code == 200


async def test_patch_entry_with_binary(client):
    p = (await client.post("/fhir/Patient", json=patient())).json()
    ops = [{"op": "replace", "path": "/gender", "value": "male"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(ops).encode()).decode(),
    }
    entry = {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{p['id']}"}}
    r = await client.post("/fhir", json=tx(entry))
    assert r.status_code == 200, r.text
    assert (await client.get(f"/fhir/Patient/{p['id']}")).json()["gender"] == "male"


async def test_limits_and_nested_bundles(client, database_url):
    nested = post({"resourceType": "Bundle", "type": "collection"})
    r = await client.post("/fhir", json=tx(nested))
    assert r.status_code == 400
    many = tx(*[post(patient()) for _ in range(1001)])
    before = await total(client, "Patient")
    r = await client.post("/fhir", json=many)
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"
    assert await total(client, "Patient") == before


async def test_wrong_bundle_types(client):
    assert (await client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"})).status_code == 400
    assert (await client.post("/fhir", json=patient())).status_code == 400
    stored = await client.post(
        "/fhir/Bundle", json={"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()}]}
    )
    assert stored.status_code == 201


async def test_retry_of_the_same_upload_is_idempotent(client):
    """A CHW app retries after a timeout: the second upload changes nothing."""
    child_url = "urn:uuid:44444444-4444-4444-8444-444444444444"
    child = patient("60606060")
    obs = weight(child_url)
    obs["identifier"] = [{"system": "https://puente.example.org/fhir/sid/chw-app-obs", "value": "dev1-0001"}]
    bundle = tx(
        post(child, child_url, if_none_exist=f"identifier={DNI}|60606060"),
        post(obs, if_none_exist="identifier=https://puente.example.org/fhir/sid/chw-app-obs|dev1-0001"),
    )
    first = await client.post("/fhir", json=bundle)
    assert first.status_code == 200, first.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201 Created", "201 Created"]
    patients, observations = await total(client, "Patient"), await total(client, "Observation")
    second = await client.post("/fhir", json=bundle)
    assert [e["response"]["status"] for e in second.json()["entry"]] == ["200 OK", "200 OK"]
    assert await total(client, "Patient") == patients
    assert await total(client, "Observation") == observations
    assert second.json()["entry"][0]["response"]["location"] == first.json()["entry"][0]["response"]["location"]


async def test_conditional_reference(client):
    await client.post("/fhir/Patient", json=patient("70707070"))
    obs = weight("x")
    obs["subject"] = {"reference": f"Patient?identifier={DNI}|70707070"}
    r = await client.post("/fhir", json=tx(post(obs)))
    assert r.status_code == 200, r.text
    await client.post("/fhir/Patient", json=patient("70707070"))
    r = await client.post("/fhir", json=tx(post(obs)))
    assert r.status_code == 412


async def test_deletes_run_before_the_creates_written_together(client):
    """A conditional DELETE sees the database as it was, not the Bundle's new resources."""
    old = (await client.post("/fhir/Patient", json=patient(DNI))).json()
    delete = {"request": {"method": "DELETE", "url": f"Patient?identifier={DNI}"}}
    r = await client.post("/fhir", json=tx(post(patient(DNI)), delete))
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created", "204 No Content"]
    assert (await client.get(f"/fhir/Patient/{old['id']}")).status_code == 410
    found = (await client.get(f"/fhir/Patient?identifier={DNI}")).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [r.json()["entry"][0]["response"]["location"].split("/")[1]]


async def test_many_creates_keep_request_order_and_their_own_versions(client):
    entries = [post(patient(f"{10000000 + i}"), f"urn:uuid:00000000-0000-4000-8000-{i:012d}") for i in range(40)]
    entries += [post({**weight("x"), "subject": {"reference": f"urn:uuid:00000000-0000-4000-8000-{i:012d}"}})
                for i in range(40)]
    r = await client.post("/fhir", json=tx(*entries))
    assert r.status_code == 200, r.text
    locations = [e["response"]["location"] for e in r.json()["entry"]]
    assert [loc.split("/")[0] for loc in locations] == ["Patient"] * 40 + ["Observation"] * 40
    assert all(loc.endswith("/_history/1") for loc in locations)
    observation = r.json()["entry"][45]["resource"]
    assert observation["subject"]["reference"] == locations[5].rsplit("/_history", 1)[0]
    weights = (await client.get("/fhir/Observation?code=http://loinc.org|29463-7&_summary=count")).json()
    assert weights["total"] == 40
    found = (await client.get("/fhir/Patient?identifier=10000007")).json()
    assert len(found["entry"]) == 1
