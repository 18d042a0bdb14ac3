"""What a caller syncs and searches is bounded by its scopes and access rules in every clause.

- a chain or `_has` into a type the token may not search is refused (403), never answered;
- `_include`/`_revinclude` of a type the token may not read adds nothing;
- system-level `_history` answers what the caller may see (deletions included) instead of 403;
- a CHW's retried upload (the README's household pattern, no generalPractitioner) finds what she
  created and creates nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.auth.support import bearer
from tests.auth.test_policies import clinic_token, ref, user_token
from tests.auth.test_policies import world as world  # a fixture

pytestmark = pytest.mark.usefixtures("world")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "household-visit.json"


def _ids(body: dict, mode: str = "match") -> list[str]:
    return sorted(e["resource"]["id"] for e in body.get("entry", []) if e.get("search", {}).get("mode") == mode)


async def test_a_chain_into_a_type_without_scope_is_refused(http, auth_app, rsa):
    only_requests = await clinic_token(http, auth_app, rsa, "clinic-a", "system/ServiceRequest.rs")
    for query in ("ServiceRequest?subject:Patient.gender=female", "ServiceRequest?subject:Patient.gender=male",
                  "ServiceRequest?subject.name=x", "Patient?_has:Observation:patient:code=718-7"):
        r = await http.get(f"/fhir/{query}", headers=only_requests)
        assert r.status_code == 403, (query, r.text)
        assert r.json()["issue"][0]["code"] == "forbidden"
    with_patients = await clinic_token(http, auth_app, rsa, "clinic-a", "system/ServiceRequest.rs system/Patient.rs")
    chained = await http.get("/fhir/ServiceRequest?subject:Patient.gender=female", headers=with_patients)
    assert chained.status_code == 200


async def test_includes_of_a_type_without_scope_add_nothing(http, auth_app, rsa):
    only_requests = await clinic_token(http, auth_app, rsa, "clinic-a", "system/ServiceRequest.rs")
    body = (await http.get("/fhir/ServiceRequest?_include=ServiceRequest:subject", headers=only_requests)).json()
    assert _ids(body) == ["sr-a", "sr-c"] and _ids(body, "include") == []
    both = await clinic_token(http, auth_app, rsa, "clinic-a", "system/ServiceRequest.rs system/Patient.rs")
    body = (await http.get("/fhir/ServiceRequest?_include=ServiceRequest:subject", headers=both)).json()
    assert _ids(body, "include") == ["pa1", "pb1"]


async def test_system_history_syncs_a_clinic_and_a_chw_with_what_they_may_see(http, auth_app, rsa, world):
    admin = bearer(world)
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", "system/*.rs")
    first = await http.get("/fhir/_history?_count=1000", headers=clinic_a)
    assert first.status_code == 200, first.text
    seen = {e["fullUrl"].split("/fhir/")[1] for e in first.json()["entry"]}
    assert seen == {"Organization/clinic-a", "ServiceRequest/sr-a", "ServiceRequest/sr-c", "Task/task-a",
                    "Task/task-c", "Patient/pa1", "Patient/pb1", "Observation/obs-result", "Observation/obs-a1"}
    # a deletion and a change later: the next sync brings exactly those, the deletion included
    since = first.json()["meta"]["lastUpdated"]
    assert (await http.delete("/fhir/Observation/obs-result", headers=admin)).status_code == 204
    task = (await http.get("/fhir/Task/task-a", headers=admin)).json()
    assert (await http.put("/fhir/Task/task-a", json={**task, "status": "received"}, headers=admin)).status_code == 200
    elsewhere = {"resourceType": "Observation", "id": "obs-b1", "status": "final", "code": {"text": "x"},
                 "subject": ref("Patient/pb1")}
    await http.put("/fhir/Observation/obs-b1", json=elsewhere, headers=admin)  # not the clinic's
    later = (await http.get(f"/fhir/_history?_since={since}", headers=clinic_a)).json()
    changes = sorted((e["request"]["method"], e["fullUrl"].split("/fhir/")[1]) for e in later["entry"])
    assert changes == [("DELETE", "Observation/obs-result"), ("PUT", "Task/task-a")]
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    mine = (await http.get("/fhir/_history?_count=1000", headers=chw)).json()
    urls = {e["fullUrl"].split("/fhir/")[1] for e in mine["entry"]}
    assert {"Patient/pa1", "Patient/pa2", "Patient/px", "Observation/obs-a1", "Observation/obs-z"} <= urls
    assert not urls & {"Patient/pb1", "Patient/pz", "Observation/obs-b1", "Observation/obs-z2"}
    assert not any(u.startswith("AuditEvent/") for u in urls)


async def test_a_chws_retried_upload_finds_what_she_created(http, auth_app, world):
    """The README's household visit, without generalPractitioner, sent twice by two phones at once and
    then once more: one mother, one child, one link, everything answered 200 the second time."""
    admin = bearer(world)
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    bundle = json.loads(EXAMPLE.read_text())
    first, second = await asyncio.gather(http.post("/fhir", json=bundle, headers=chw),
                                         http.post("/fhir", json=bundle, headers=chw))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    retry = await http.post("/fhir", json=bundle, headers=chw)
    assert retry.status_code == 200, retry.text
    statuses = [e["response"]["status"] for e in retry.json()["entry"]]
    assert statuses == ["200 OK"] * len(bundle["entry"])
    ids = [e["fullUrl"] for e in retry.json()["entry"]]
    assert ids in ([e["fullUrl"] for e in first.json()["entry"]], [e["fullUrl"] for e in second.json()["entry"]])
    for resource_type, expected in (("Patient", 5 + 2), ("RelatedPerson", 1), ("ServiceRequest", 3 + 1)):
        total = (await http.get(f"/fhir/{resource_type}?_total=accurate", headers=admin)).json()["total"]
        assert total == expected, resource_type  # the world's, plus one upload's
    child = ids[1].split("/fhir/", 1)[1]
    assert (await http.get(f"/fhir/{child}", headers=chw)).status_code == 200  # hers, though nobody assigned her
    # and what others write about the child she registered is hers to see too: a clinic's outcome
    outcome = {"resourceType": "Observation", "status": "final", "code": {"text": "hemoglobin"},
               "subject": ref(child), "valueQuantity": {"value": 10.9, "unit": "g/dL"}}
    written = await http.post("/fhir/Observation", json=outcome, headers=admin)
    assert (await http.get(f"/fhir/Observation/{written.json()['id']}", headers=chw)).status_code == 200
    stranger = await user_token(http, auth_app, "eva", "Practitioner/chw-3")  # another team
    assert (await http.get(f"/fhir/{child}", headers=stranger)).status_code == 404
