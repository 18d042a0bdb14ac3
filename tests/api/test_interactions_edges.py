"""What integrators trip over: _elements on choice elements, numbers kept as written, HEAD, $validate,
and JSON Patch sent as plain application/json."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.builders import hemoglobin, patient

FHIR = {"Content-Type": "application/fhir+json"}


async def _create(client, body) -> dict:
    content = body if isinstance(body, str) else json.dumps(body)
    r = await client.post(f"/fhir/{json.loads(content)['resourceType']}", content=content, headers=FHIR)
    assert r.status_code == 201, r.text
    return r.json()


# --- _elements on choice elements (FHIR R4 search.html#elements: `value` names value[x]) ---------------


async def test_elements_keeps_the_chosen_type_of_a_choice_element(client):
    child = await _create(client, patient())
    hb = await _create(client, hemoglobin(child["id"]))
    r = await client.get(f"/fhir/Observation/{hb['id']}?_elements=value,effective")
    body = r.json()
    assert body["valueQuantity"]["unit"] == "g/dL"
    assert body["effectiveDateTime"] == "2026-03-02T10:15:00-05:00"
    assert "category" not in body and "subject" not in body
    assert {"code": "SUBSETTED"}.items() <= body["meta"]["tag"][-1].items()
    found = (await client.get("/fhir/Observation?_elements=value")).json()["entry"][0]["resource"]
    assert "valueQuantity" in found and "effectiveDateTime" not in found


async def test_elements_does_not_take_a_longer_name_for_a_choice(client):
    vs = await _create(client, {"resourceType": "ValueSet", "status": "draft", "url": "https://x.example/vs"})
    body = (await client.get(f"/fhir/ValueSet/{vs['id']}?_elements=url")).json()
    assert body["url"] == "https://x.example/vs"


# --- numbers come back as they were written ---------------------------------------------------------


@pytest.mark.parametrize("number", ["1.0e2", "72.50", "1E-7", "-0.0", "12345678901234567890.000000001"])
async def test_decimals_are_written_back_exactly(client, number):
    child = await _create(client, patient())
    created = await client.post("/fhir/Observation", content=hemoglobin(child["id"], value=number), headers=FHIR)
    assert f'"value":{number},' in created.text
    read = await client.get(created.headers["location"].split("/_history")[0].replace("http://testserver", ""))
    assert f'"value":{number},' in read.text
    assert f'"value":{number},' in (await client.get("/fhir/Observation?code=718-7")).text


# --- HEAD (RFC 9110 §9.3.2) ---------------------------------------------------------------------------


async def test_head_answers_a_read_with_its_headers_and_no_body(client):
    p = await _create(client, patient())
    get = await client.get(f"/fhir/Patient/{p['id']}")
    head = await client.head(f"/fhir/Patient/{p['id']}")
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "last-modified", "content-type", "content-length"):
        assert head.headers[name] == get.headers[name], name
    cached = await client.head(f"/fhir/Patient/{p['id']}", headers={"If-None-Match": get.headers["etag"]})
    assert cached.status_code == 304


async def test_head_on_searches_metadata_and_missing_resources(client):
    await _create(client, patient())
    search = await client.head("/fhir/Patient?gender=female")
    assert search.status_code == 200 and search.content == b""
    assert search.headers["content-type"].startswith("application/fhir+json")
    assert (await client.head("/fhir/metadata")).status_code == 200
    missing = await client.head("/fhir/Patient/nobody")
    assert missing.status_code == 404 and missing.content == b""


async def test_head_on_a_gzipped_answer_has_the_gzipped_headers(client):
    for _ in range(5):
        await _create(client, patient())
    get = await client.get("/fhir/Patient", headers={"Accept-Encoding": "gzip"})
    head = await client.head("/fhir/Patient", headers={"Accept-Encoding": "gzip"})
    assert get.headers["content-encoding"] == head.headers["content-encoding"] == "gzip"


# --- $validate (FHIR R4 resource-operation-validate.html) ---------------------------------------------


async def test_validate_a_valid_resource_stores_nothing(client):
    r = await client.post("/fhir/Patient/$validate", json=patient())
    assert r.status_code == 200
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["severity"] for i in outcome["issue"]] == ["information"]
    assert (await client.get("/fhir/Patient")).json()["total"] == 0


async def test_validate_reports_what_is_wrong_with_200(client):
    r = await client.post("/fhir/Patient/$validate", json={**patient(), "gender": "banana"})
    assert r.status_code == 200
    issue = r.json()["issue"][0]
    assert issue["severity"] == "error" and "Patient.gender" in json.dumps(issue)


async def test_validate_takes_parameters_with_mode_and_profile(client):
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": patient()},
            {"name": "mode", "valueCode": "update"},
            {"name": "profile", "valueUri": "http://hl7.org/fhir/StructureDefinition/Patient"},
        ],
    }
    r = await client.post("/fhir/Patient/$validate", json=params)
    assert r.status_code == 200
    assert r.json()["issue"][0]["severity"] == "error"  # an update needs the id
    params["parameter"][0]["resource"] = {**patient(), "id": "p1"}
    assert (await client.post("/fhir/Patient/$validate", json=params)).json()["issue"][0]["severity"] == "information"


async def test_validate_an_update_and_a_delete_of_an_instance(client):
    p = await _create(client, patient())
    r = await client.post(f"/fhir/Patient/{p['id']}/$validate", json={**patient(), "id": "other"})
    assert r.json()["issue"][0]["severity"] == "error"
    assert "does not match" in r.json()["issue"][0]["diagnostics"]
    ok = await client.post(f"/fhir/Patient/{p['id']}/$validate?mode=delete")
    assert ok.status_code == 200 and ok.json()["issue"][0]["severity"] == "information"
    gone = await client.post("/fhir/Patient/nobody/$validate?mode=delete")
    assert gone.status_code == 200 and gone.json()["issue"][0]["code"] == "not-found"
    assert (await client.get(f"/fhir/Patient/{p['id']}")).status_code == 200  # nothing was deleted


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/fhir/Patient/$validate?mode=destroy", json.dumps(patient()), 400),
        ("/fhir/Patient/$validate?profile=https://x.example/StructureDefinition/mine", json.dumps(patient()), 400),
        ("/fhir/Patient/$validate", "{not json", 400),
        ("/fhir/Patient/$validate", "", 400),
        ("/fhir/Patient/$validate?mode=delete", json.dumps(patient()), 400),
        ("/fhir/SubscriptionTopic/$validate", json.dumps({"resourceType": "SubscriptionTopic"}), 404),
    ],
)
async def test_validate_refuses_what_it_cannot_run_on(client, url, body, status):
    r = await client.post(url, content=body, headers=FHIR)
    assert r.status_code == status
    assert r.json()["resourceType"] == "OperationOutcome"


# --- JSON Patch as application/json -------------------------------------------------------------------


async def test_json_patch_sent_as_application_json(client):
    p = await _create(client, patient())
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = await client.patch(f"/fhir/Patient/{p['id']}", json=ops)  # httpx sends application/json
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "other"


async def test_a_patch_that_is_not_an_array_is_a_400(client):
    p = await _create(client, patient())
    r = await client.patch(f"/fhir/Patient/{p['id']}", json={"op": "replace", "path": "/gender", "value": "other"})
    assert r.status_code == 400
    assert "array" in r.json()["issue"][0]["diagnostics"]
