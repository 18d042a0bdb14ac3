"""Patient/$everything (FHIR R4 patient-operation-everything.html): the Patient and its compartment,
with `_since`, `_type`, `_count` and paging, only what the caller may read."""

from __future__ import annotations

from tests.auth.support import bearer
from tests.bulk.exports import observation, post, seed


async def _all_pages(http, token, url, **params):
    entries, pages = [], 0
    r = await http.get(url, params=params, headers=bearer(token))
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["type"] == "searchset"
        entries.extend(body["entry"])
        pages += 1
        following = [link["url"] for link in body["link"] if link["relation"] == "next"]
        if not following:
            return entries, pages
        r = await http.get(following[0].removeprefix("https://puente.test"), headers=bearer(token))


async def test_a_patients_record_page_by_page(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    first = data["patients"][0]
    entries, pages = await _all_pages(bulk_http, token, f"/fhir/Patient/{first}/$everything", _count="2")
    found = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries]
    assert found[0] == ("Patient", first)
    audit = [f for f in found if f[0] == "AuditEvent"]  # the record of who wrote it: an admin sees them
    assert audit
    assert sorted(f for f in found[1:] if f[0] != "AuditEvent") == sorted(
        [("Observation", o) for o in data["observations"] if o in (data["observations"][0], data["observations"][3])]
        + [("ServiceRequest", data["referrals"]["clinic-a"])]
    )
    assert len(found) == len(set(found)) and pages >= 2
    assert all(e["fullUrl"] == f"https://puente.test/fhir/{t}/{i}" for e, (t, i) in zip(entries, found, strict=True))


async def test_type_and_since_narrow_the_record(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    first = data["patients"][0]
    only = await bulk_http.get(
        f"/fhir/Patient/{first}/$everything", params={"_type": "Observation"}, headers=bearer(token)
    )
    assert {e["resource"]["resourceType"] for e in only.json()["entry"]} == {"Observation"}
    mark = only.json()["meta"]["lastUpdated"]
    newer = await post(bulk_http, token, observation(first, value=9.1))
    late = await bulk_http.get(
        f"/fhir/Patient/{first}/$everything",
        params={"_since": mark, "_type": "Observation,Patient"},
        headers=bearer(token),
    )
    assert [e["resource"]["id"] for e in late.json()["entry"]] == [newer]


async def test_what_the_caller_may_not_read_is_absent(bulk_http, clients):
    admin = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, admin)
    clinic = await clients.token(
        "system/Patient.rs system/ServiceRequest.rs system/Observation.rs", organization="Organization/clinic-a"
    )
    mine, theirs = data["patients"][0], data["patients"][1]
    r = await bulk_http.get(f"/fhir/Patient/{mine}/$everything", headers=bearer(clinic))
    types = {e["resource"]["resourceType"] for e in r.json()["entry"]}
    assert types <= {"Patient", "ServiceRequest", "Observation"} and "Patient" in types
    assert (await bulk_http.get(f"/fhir/Patient/{theirs}/$everything", headers=bearer(clinic))).status_code == 404
    r = await bulk_http.get("/fhir/Patient/$everything", headers=bearer(clinic))
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    every = await bulk_http.get(
        "/fhir/Patient/$everything", params={"_type": "Patient", "_count": "10"}, headers=bearer(admin)
    )
    assert {e["resource"]["id"] for e in every.json()["entry"]} == set(data["patients"])


async def test_bad_everything_requests_are_4xx(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    patient = await post(bulk_http, token, {"resourceType": "Patient"})
    for params, status in (
        ({"_type": "Organization"}, 400),
        ({"_since": "soon"}, 400),
        ({"_count": "x"}, 400),
        ({"_cursor": "1.2"}, 400),
    ):
        r = await bulk_http.get(f"/fhir/Patient/{patient}/$everything", params=params, headers=bearer(token))
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert (await bulk_http.get("/fhir/Patient/nobody/$everything", headers=bearer(token))).status_code == 404
    await bulk_http.delete(f"/fhir/Patient/{patient}", headers=bearer(token))
    assert (await bulk_http.get(f"/fhir/Patient/{patient}/$everything", headers=bearer(token))).status_code == 410
