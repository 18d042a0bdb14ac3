"""The searches the CHW programme runs every day (issue 3), end to end over HTTP."""

from __future__ import annotations

from tests.conftest import BASE
from tests.fixtures.builders import DNI, hemoglobin, patient
from tests.search.conftest import found_ids, search

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _referral(rid: str, facility: str, status: str, patient_id: str):
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Organization/{facility}"}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]},
    }


async def _put(client, resource):
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_referral_pull_sees_only_what_is_new(client):
    await _put(client, {**patient("11111111"), "id": "child"})
    await _put(client, _referral("r1", "posta", "active", "child"))
    await _put(client, _referral("r2", "hospital", "active", "child"))
    await _put(client, _referral("r3", "posta", "completed", "child"))
    first = await search(client, "ServiceRequest?performer=Organization/posta&status=active")
    assert [e["resource"]["id"] for e in first["entry"]] == ["r1"]
    since = first["meta"]["lastUpdated"]
    latest = max(e["resource"]["meta"]["lastUpdated"] for e in first["entry"])
    pull = f"ServiceRequest?performer=Organization/posta&status=active&_lastUpdated=gt{latest}"
    assert await found_ids(client, pull) == set()
    await _put(client, _referral("r4", "posta", "active", "child"))
    await _put(client, {**_referral("r3", "posta", "active", "child")})  # reopened
    await _put(client, _referral("r5", "hospital", "active", "child"))
    assert await found_ids(client, pull) == {"r4", "r3"}
    assert since  # the Bundle carries its own lastUpdated for the next pull


async def test_patient_by_identifier(client):
    created = await client.post("/fhir/Patient", json=patient("44556677"))
    await client.post("/fhir/Patient", json=patient("77665544"))
    body = await search(client, f"Patient?identifier={DNI}|44556677")
    assert [e["resource"]["id"] for e in body["entry"]] == [created.json()["id"]]
    assert body["total"] == 1
    assert await found_ids(client, "Patient?identifier=https://other.example/dni|44556677") == set()


async def test_a_childs_hemoglobin_newest_first_in_either_unit(client):
    child = (await client.post("/fhir/Patient", json=patient("12121212"))).json()["id"]
    other = (await client.post("/fhir/Patient", json=patient("34343434"))).json()["id"]
    headers = {"Content-Type": "application/fhir+json"}
    readings = [
        ("9.8", "2026-01-10T09:00:00-05:00"),
        ("11.2", "2026-03-02T10:15:00-05:00"),
        ("10.4", "2025-11-20T08:30:00-05:00"),
    ]
    ids = []
    for value, when in readings:
        r = await client.post("/fhir/Observation", content=hemoglobin(child, value, when), headers=headers)
        ids.append(r.json()["id"])
    in_g_per_l = hemoglobin(child, "105", "2026-02-01T09:00:00-05:00").replace('"g/dL"', '"g/L"')
    ids.append((await client.post("/fhir/Observation", content=in_g_per_l, headers=headers)).json()["id"])
    await client.post("/fhir/Observation", content=hemoglobin(other, "8.0"), headers=headers)
    body = await search(client, f"Observation?subject=Patient/{child}&code={LOINC}|718-7&_sort=-date")
    assert [e["resource"]["id"] for e in body["entry"]] == [ids[1], ids[3], ids[0], ids[2]]
    assert all(e["fullUrl"].startswith(f"{BASE}/fhir/Observation/") for e in body["entry"])
    # anaemia below 11 g/dL: the same answer asked in g/dL or in g/L (105 g/L = 10.5 g/dL)
    low_dl = await found_ids(client, f"Observation?subject=Patient/{child}&value-quantity=lt11|{UCUM}|g/dL")
    low_l = await found_ids(client, f"Observation?subject=Patient/{child}&value-quantity=lt110|{UCUM}|g/L")
    assert low_dl == low_l == {ids[0], ids[2], ids[3]}
    combo = await found_ids(client, f"Observation?code-value-quantity={LOINC}|718-7$lt10|{UCUM}|g/dL")
    others = await found_ids(client, f"Observation?subject=Patient/{other}")
    assert combo == {ids[0], *others}
