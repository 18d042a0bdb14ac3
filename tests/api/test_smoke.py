async def test_create_read(client):
    r = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    pid = r.json()["id"]
    r = await client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "1"
    assert loc.endswith(f"/fhir/Patient/{pid}/_history/1")


async def test_metrics_count_requests_by_route_template(client):
    created = (await client.post("/fhir/Patient", json={"resourceType": "Patient"})).json()
    await client.get(f"/fhir/Patient/{created['id']}")
    await client.get("/fhir/Patient/does-not-exist")
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'puente_http_requests_total{method="GET",route="/fhir/{resource_type}/{resource_id}",status="404"}' in text
    assert 'route="/fhir/{resource_type}/{resource_id}",status="200"' in text
    assert "puente_http_request_duration_seconds_bucket" in text
    assert created["id"] not in text and "does-not-exist" not in text  # templates, never client paths
