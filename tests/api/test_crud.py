"""create / read / vread / update / patch / delete (FHIR R4 http.html), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from tests.fixtures.builders import DNI, hemoglobin, patient

FHIR = {"Content-Type": "application/fhir+json"}


async def create(client, body) -> dict:
    r = await client.post(f"/fhir/{body['resourceType']}", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_assigns_id_and_version(client):
    r = await client.post("/fhir/Patient", json=patient("12345678"))
    assert r.status_code == 201
    body = r.json()
    assert body["id"] and body["meta"]["versionId"] == "1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"http://testserver/fhir/Patient/{body['id']}/_history/1"
    assert "GMT" in r.headers["last-modified"]
    assert r.headers["content-type"].startswith("application/fhir+json")


async def test_client_id_in_create_body_is_replaced(client):
    body = await create(client, patient(id="chosen-by-client"))
    assert body["id"] != "chosen-by-client"


async def test_round_trip_keeps_decimals_timestamps_and_extensions(client):
    p = await create(client, patient())
    raw = hemoglobin(p["id"], value="10.50", when="2026-03-02T10:15:00.000-05:00")
    r = await client.post("/fhir/Observation", content=raw, headers=FHIR)
    assert r.status_code == 201
    read = await client.get(f"/fhir/Observation/{r.json()['id']}")
    assert '"value":10.50' in read.text
    assert '"effectiveDateTime":"2026-03-02T10:15:00.000-05:00"' in read.text
    ext = {"url": "https://puente.example.org/fhir/StructureDefinition/device", "valueString": "HemoCue 301"}
    body = json.loads(raw)
    body["extension"] = [ext]
    body["valueQuantity"]["value"] = 7.0
    r = await client.post("/fhir/Observation", content=json.dumps(body).replace("7.0", "7.00"), headers=FHIR)
    read = (await client.get(f"/fhir/Observation/{r.json()['id']}")).json()
    assert read["extension"] == [ext]
    assert '"value":7.00' in (await client.get(f"/fhir/Observation/{read['id']}")).text


async def test_read_vread_and_versions(client):
    p = await create(client, patient())
    pid = p["id"]
    updated = {**patient(), "id": pid, "gender": "other"}
    r = await client.put(f"/fhir/Patient/{pid}", json=updated)
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["gender"] == "other"
    v1 = await client.get(f"/fhir/Patient/{pid}/_history/1")
    assert v1.status_code == 200 and v1.json()["gender"] == "female"
    assert (await client.get(f"/fhir/Patient/{pid}/_history/3")).status_code == 404
    assert (await client.get(f"/fhir/Patient/{pid}/_history/x")).status_code == 404


async def test_update_as_create_with_client_id(client):
    r = await client.put("/fhir/Patient/nino-001", json={**patient(), "id": "nino-001"})
    assert r.status_code == 201
    assert r.headers["etag"] == 'W/"1"'
    assert (await client.get("/fhir/Patient/nino-001")).status_code == 200


async def test_update_id_mismatch_and_missing_id(client):
    r = await client.put("/fhir/Patient/a1", json={**patient(), "id": "b2"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.put("/fhir/Patient/a1", json=patient())
    assert r.status_code == 400


async def test_if_match_prevents_lost_updates(client):
    p = await create(client, patient())
    pid = p["id"]
    first = await client.put(
        f"/fhir/Patient/{pid}", json={**patient(), "id": pid, "active": True}, headers={"If-Match": 'W/"1"'}
    )
    assert first.status_code == 200
    stale = await client.put(
        f"/fhir/Patient/{pid}", json={**patient(), "id": pid, "active": False}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    current = (await client.get(f"/fhir/Patient/{pid}")).json()
    assert current["active"] is True and current["meta"]["versionId"] == "2"
    bad = await client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid}, headers={"If-Match": "nonsense"})
    assert bad.status_code == 400


async def test_conditional_reads_304(client):
    p = await create(client, patient())
    r = await client.get(f"/fhir/Patient/{p['id']}", headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 304
    r = await client.get(f"/fhir/Patient/{p['id']}", headers={"If-None-Match": 'W/"0"'})
    assert r.status_code == 200
    last_modified = (await client.get(f"/fhir/Patient/{p['id']}")).headers["last-modified"]
    r = await client.get(f"/fhir/Patient/{p['id']}", headers={"If-Modified-Since": last_modified})
    assert r.status_code == 304
    r = await client.get(f"/fhir/Patient/{p['id']}", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200


async def test_patch_json_patch(client):
    p = await create(client, patient())
    ops = [{"op": "replace", "path": "/gender", "value": "other"}, {"op": "add", "path": "/active", "value": True}]
    r = await client.patch(
        f"/fhir/Patient/{p['id']}", content=json.dumps(ops), headers={"Content-Type": "application/json-patch+json"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "other" and r.json()["active"] is True and r.json()["meta"]["versionId"] == "2"


async def test_patch_unhappy_paths(client):
    p = await create(client, patient())
    url = f"/fhir/Patient/{p['id']}"
    patch_type = {"Content-Type": "application/json-patch+json"}
    r = await client.patch(url, content='[{"op":"replace","path":"/gender","value":"banana"}]', headers=patch_type)
    assert r.status_code == 400
    r = await client.patch(url, content='[{"op":"remove","path":"/nothing"}]', headers=patch_type)
    assert r.status_code in (400, 422)
    r = await client.patch(url, content='[{"op":"replace","path":"/gender","value":"male"}]', headers=FHIR)
    assert r.status_code == 415
    stale = {**patch_type, "If-Match": 'W/"9"'}
    r = await client.patch(url, content='[{"op":"replace","path":"/gender","value":"male"}]', headers=stale)
    assert r.status_code == 412
    assert (await client.get(url)).json()["meta"]["versionId"] == "1"
    r = await client.patch("/fhir/Patient/nope", content="[]", headers=patch_type)
    assert r.status_code == 404


async def test_delete_is_versioned_and_idempotent(client):
    p = await create(client, patient())
    url = f"/fhir/Patient/{p['id']}"
    r = await client.delete(url)
    assert r.status_code == 204
    gone = await client.get(url)
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
    assert (await client.delete(url)).status_code == 204
    assert (await client.delete("/fhir/Patient/never-existed")).status_code == 204
    assert (await client.get(f"{url}/_history/1")).status_code == 200
    history = (await client.get(f"{url}/_history")).json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    r = await client.put(url, json={**patient(), "id": p["id"]})
    assert r.status_code == 201 and r.json()["meta"]["versionId"] == "3"


async def test_prefer_return(client):
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and r.headers["location"]
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 201 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=representation"})
    assert r.json()["resourceType"] == "Patient"


async def test_format_pretty_summary_elements(client):
    p = await create(
        client,
        patient(
            "11112222", text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Rosa</div>'}
        ),
    )
    url = f"/fhir/Patient/{p['id']}"
    assert (await client.get(url, params={"_format": "xml"})).status_code == 406
    assert (await client.get(url, headers={"Accept": "application/fhir+xml"})).status_code == 406
    assert (await client.get(url, params={"_format": "json"})).status_code == 200
    assert (
        (await client.get(url, headers={"Accept": "application/json"}))
        .headers["content-type"]
        .startswith("application/json")
    )
    assert "\n  " in (await client.get(url, params={"_pretty": "true"})).text
    summary = (await client.get(url, params={"_summary": "true"})).json()
    assert "text" not in summary and summary["identifier"] and summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    text = (await client.get(url, params={"_summary": "text"})).json()
    assert "text" in text and "identifier" not in text
    data = (await client.get(url, params={"_summary": "data"})).json()
    assert "text" not in data and "name" in data
    elements = (await client.get(url, params={"_elements": "gender"})).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    assert (await client.get(url, params={"_summary": "bogus"})).status_code == 400


async def test_conditional_create(client):
    body = patient("44445555")
    headers = {"If-None-Exist": f"identifier={DNI}|44445555"}
    first = await client.post("/fhir/Patient", json=body, headers=headers)
    assert first.status_code == 201
    again = await client.post("/fhir/Patient", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    await client.post("/fhir/Patient", json=patient("44445555"))
    ambiguous = await client.post("/fhir/Patient", json=body, headers=headers)
    assert ambiguous.status_code == 412


async def test_conditional_update(client):
    url = f"/fhir/Patient?identifier={DNI}|77778888"
    created = await client.put(url, json=patient("77778888"))
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = await client.put(url, json={**patient("77778888"), "gender": "other"})
    assert updated.status_code == 200 and updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    wrong_id = await client.put(url, json={**patient("77778888"), "id": "other-id"})
    assert wrong_id.status_code == 400
    await client.post("/fhir/Patient", json=patient("77778888"))
    many = await client.put(url, json=patient("77778888"))
    assert many.status_code == 412
