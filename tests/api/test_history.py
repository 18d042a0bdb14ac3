"""history at instance, type and system level (FHIR R4 http.html#history): _since, _at, _count, paging."""

from __future__ import annotations

import asyncio

from tests.fixtures.builders import patient


async def _versions(client, count: int) -> tuple[str, list[str]]:
    """A Patient with `count` versions; returns its id and each version's lastUpdated."""
    created = (await client.post("/fhir/Patient", json=patient())).json()
    pid = created["id"]
    stamps = [created["meta"]["lastUpdated"]]
    for i in range(1, count):
        await asyncio.sleep(0.005)  # distinct millisecond timestamps
        body = {**patient(), "id": pid, "active": i % 2 == 0}
        stamps.append((await client.put(f"/fhir/Patient/{pid}", json=body)).json()["meta"]["lastUpdated"])
    return pid, stamps


async def _follow(client, url: str) -> tuple[list[dict], list[dict]]:
    """Every entry across the pages, following `next` links; and the pages themselves."""
    entries, pages = [], []
    while url:
        page = (await client.get(url.replace("http://testserver", ""))).json()
        assert page["resourceType"] == "Bundle" and page["type"] == "history"
        pages.append(page)
        entries.extend(page["entry"])
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return entries, pages


async def test_instance_history_newest_first_with_paging(client):
    pid, _ = await _versions(client, 5)
    entries, pages = await _follow(client, f"/fhir/Patient/{pid}/_history?_count=2")
    assert len(pages) == 3
    assert [e["resource"]["meta"]["versionId"] for e in entries] == ["5", "4", "3", "2", "1"]
    assert pages[0]["total"] == 5
    assert all(e["fullUrl"] == f"http://testserver/fhir/Patient/{pid}" for e in entries)
    assert entries[-1]["request"] == {"method": "POST", "url": "Patient"}
    assert entries[0]["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    assert entries[0]["response"]["etag"] == 'W/"5"'
    self_link = next(link["url"] for link in pages[0]["link"] if link["relation"] == "self")
    assert self_link.endswith(f"/fhir/Patient/{pid}/_history?_count=2")


async def test_paging_stays_correct_while_versions_are_added(client):
    pid, _ = await _versions(client, 4)
    first = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_count": 2})).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    await client.put(f"/fhir/Patient/{pid}", json={**patient(), "id": pid})  # version 5 arrives meanwhile
    second = (await client.get(next_url.replace("http://testserver", ""))).json()
    seen = [e["resource"]["meta"]["versionId"] for e in first["entry"] + second["entry"]]
    assert seen == ["4", "3", "2", "1"]


async def test_since_keeps_only_later_versions(client):
    pid, stamps = await _versions(client, 4)
    page = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_since": stamps[2]})).json()
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"]] == ["4", "3"]
    future = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_since": "2999-01-01"})).json()
    assert future["entry"] == [] and future["total"] == 0


async def test_at_gives_the_version_current_then(client):
    pid, stamps = await _versions(client, 3)
    page = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_at": stamps[1]})).json()
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"]] == ["2"]
    before = (await client.get(f"/fhir/Patient/{pid}/_history", params={"_at": "2001-01-01"})).json()
    assert before["entry"] == []


async def test_type_and_system_history(client):
    pid, _ = await _versions(client, 2)
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "peso"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    await client.post("/fhir/Observation", json=obs)
    patients = (await client.get("/fhir/Patient/_history")).json()
    assert {e["resource"]["resourceType"] for e in patients["entry"]} == {"Patient"}
    assert patients["total"] == 2
    everything = (await client.get("/fhir/_history")).json()
    types = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert types[0] == "Observation" and types.count("Patient") == 2
    assert everything["total"] >= 3


async def test_history_of_unknown_resource_is_404(client):
    r = await client.get("/fhir/Patient/never-was/_history")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    r = await client.get("/fhir/Patient/_history", params={"_cursor": "abc"})
    assert r.status_code == 400
