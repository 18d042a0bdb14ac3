"""Concurrent writers, really concurrent: separate connections, interleaved in one event loop.

(tests/test_live_server.py repeats the key case against `puente serve --workers 2` processes.)
"""

from __future__ import annotations

import asyncio

from tests.fixtures.builders import DNI, patient


async def test_parallel_conditional_creates_make_one_resource(client):
    """hapi-fhir-jpaserver-starter #459: parallel conditional creates must not duplicate a child."""
    headers = {"If-None-Exist": f"identifier={DNI}|80808080"}
    responses = await asyncio.gather(
        *[client.post("/fhir/Patient", json=patient("80808080"), headers=headers) for _ in range(12)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) == {200, 201}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    history = (await client.get("/fhir/Patient/_history")).json()
    assert history["total"] == 1


async def test_parallel_transactions_with_same_identifiers_make_one_set(client):
    def upload():
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:55555555-5555-4555-8555-555555555555",
                    "resource": patient("90909090"),
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={DNI}|90909090"},
                }
            ],
        }

    responses = await asyncio.gather(*[client.post("/fhir", json=upload()) for _ in range(8)])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    created = [r for r in responses if r.json()["entry"][0]["response"]["status"] == "201 Created"]
    assert len(created) == 1
    assert (await client.get("/fhir/Patient/_history")).json()["total"] == 1


async def test_two_devices_same_version_one_wins(client):
    created = (await client.post("/fhir/Patient", json=patient())).json()
    pid = created["id"]

    def device_update(gender: str):
        body = {**patient(), "id": pid, "gender": gender}
        return client.put(f"/fhir/Patient/{pid}", json=body, headers={"If-Match": 'W/"1"'})

    a, b = await asyncio.gather(device_update("male"), device_update("other"))
    assert sorted([a.status_code, b.status_code]) == [200, 412]
    winner = a if a.status_code == 200 else b
    current = (await client.get(f"/fhir/Patient/{pid}")).json()
    assert current["meta"]["versionId"] == "2"
    assert current["gender"] == winner.json()["gender"]
    loser = b if winner is a else a
    assert loser.json()["resourceType"] == "OperationOutcome"


async def test_parallel_updates_without_if_match_all_land_as_versions(client):
    created = (await client.post("/fhir/Patient", json=patient())).json()
    pid = created["id"]
    responses = await asyncio.gather(
        *[client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid, "active": i % 2 == 0}) for i in range(6)]
    )
    assert all(r.status_code == 200 for r in responses)
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == [2, 3, 4, 5, 6, 7]
    history = (await client.get(f"/fhir/Patient/{pid}/_history")).json()
    assert history["total"] == 7
