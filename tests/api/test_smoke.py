async def test_create_read(client):
    r = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    pid = r.json()["id"]
    r = await client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "1"
    assert loc.endswith(f"/fhir/Patient/{pid}/_history/1")
