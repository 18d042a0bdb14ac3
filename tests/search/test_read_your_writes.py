"""A client's search finds what it was just told is stored.

A version's stamp is the database clock rounded up to the millisecond and a search's watermark the
clock rounded down less half a millisecond (storage.clock), so on PostgreSQL a search sent the
moment a write was answered could be as of a watermark before it: 83 of 400 searches right after a
PUT, in process, did not find it, and a clinic or app that writes then looks (or deduplicates) would
not have either. A write is now answered only once its stamps are behind the clock."""

from __future__ import annotations

from tests.search.conftest import found_ids


async def test_a_search_right_after_each_write_finds_it(client):
    for n in range(60):
        patient = {"resourceType": "Patient", "id": f"w{n}", "name": [{"family": f"Written{n}"}]}
        assert (await client.put(f"/fhir/Patient/w{n}", json=patient)).status_code == 201
        assert await found_ids(client, f"Patient?family=Written{n}") == {f"w{n}"}
        created = await client.post("/fhir/Observation", json={
            "resourceType": "Observation", "status": "final", "code": {"text": f"note {n}"},
            "subject": {"reference": f"Patient/w{n}"}})
        assert created.status_code == 201
        assert await found_ids(client, f"Observation?subject=Patient/w{n}") == {created.json()["id"]}
    # and the history as of that moment has every one of them
    history = (await client.get("/fhir/Patient/_history?_count=100")).json()
    assert len(history["entry"]) == 60
