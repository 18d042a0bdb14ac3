"""No write widens what its caller may see (storage.grants): one test per row of the README's table.

Real tokens throughout: clinics with backend-services keys bound to their Organization, CHWs signed
in through the login page. Every refusal leaves nothing written and the caller seeing what it saw.
"""

from __future__ import annotations

import uuid

import pytest

from tests.auth.support import bearer
from tests.auth.test_policies import clinic_token, ref, task, user_token
from tests.auth.test_policies import world as world  # a fixture

pytestmark = pytest.mark.usefixtures("world")

CLINIC_LOOP = "system/ServiceRequest.rs system/Task.rus system/Patient.rs system/Observation.crs"


async def _count(http, admin: dict, query: str) -> int:
    body = (await http.get(f"/fhir/{query}&_total=accurate" if "?" in query else f"/fhir/{query}?_total=accurate",
                           headers=admin)).json()
    return int(body["total"])


def _refused(response, status: int, element: str) -> None:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert element in outcome["issue"][0]["diagnostics"]


@pytest.fixture
async def admin(world) -> dict:
    return bearer(world)


# ---- clinics ----------------------------------------------------------------------------------


async def test_a_clinic_task_cannot_reach_another_clinics_referral_or_patient(http, auth_app, rsa, admin):
    await http.put("/fhir/Patient/pb2", json={"resourceType": "Patient", "id": "pb2"}, headers=admin)
    b_referral = {"resourceType": "ServiceRequest", "id": "sr-b2", "status": "active", "intent": "order",
                  "subject": ref("Patient/pb2"), "performer": [ref("Organization/clinic-b")]}
    await http.put("/fhir/ServiceRequest/sr-b2", json=b_referral, headers=admin)
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC_LOOP + " system/Task.cruds")
    hidden = ["ServiceRequest/sr-b2", "Patient/pb2"]
    assert [(await http.get(f"/fhir/{r}", headers=clinic_a)).status_code for r in hidden] == [404, 404]
    before = await _count(http, admin, "Task")
    sneaky = task("t-sneaky", "ServiceRequest/sr-b2", "Patient/pb2", "Organization/clinic-a")
    del sneaky["id"]
    _refused(await http.post("/fhir/Task", json=sneaky, headers=clinic_a), 404, "Task.")
    in_bundle = {"resourceType": "Bundle", "type": "transaction",
                 "entry": [{"resource": sneaky, "request": {"method": "POST", "url": "Task"}}]}
    _refused(await http.post("/fhir", json=in_bundle, headers=clinic_a), 404, "Task.")
    assert await _count(http, admin, "Task") == before  # nothing written
    # and it still sees neither (404 -> 404, not 404 -> 200)
    assert [(await http.get(f"/fhir/{r}", headers=clinic_a)).status_code for r in hidden] == [404, 404]


async def test_a_clinic_cannot_re_point_its_own_task(http, auth_app, rsa, admin):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC_LOOP)
    current = (await http.get("/fhir/Task/task-a", headers=clinic_a)).json()
    moved = {**current, "focus": ref("ServiceRequest/sr-b")}
    _refused(await http.put("/fhir/Task/task-a", json=moved, headers=clinic_a), 404, "Task.focus")
    patch = [{"op": "replace", "path": "/focus", "value": ref("ServiceRequest/sr-b")}]
    patching = {**clinic_a, "Content-Type": "application/json-patch+json"}
    r = await http.patch("/fhir/Task/task-a", json=patch, headers=patching)
    _refused(r, 404, "Task.focus")
    assert (await http.get("/fhir/Task/task-a", headers=admin)).json()["meta"]["versionId"] == "1"
    assert (await http.get("/fhir/ServiceRequest/sr-b", headers=clinic_a)).status_code == 404


async def test_a_clinic_may_update_its_task_and_post_the_outcome(http, auth_app, rsa, admin):
    """The loop the README describes, with the README's scopes: accept the Task, post the outcome."""
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC_LOOP)
    current = (await http.get("/fhir/Task/task-a", headers=clinic_a)).json()
    accepted = await http.put("/fhir/Task/task-a", json={**current, "status": "accepted"}, headers=clinic_a)
    assert accepted.status_code == 200, accepted.text
    outcome = {"resourceType": "Observation", "status": "final", "code": {"text": "hemoglobin"},
               "subject": ref("Patient/pa1"), "basedOn": [ref("ServiceRequest/sr-a")],
               "valueQuantity": {"value": 11.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}}
    posted = await http.post("/fhir/Observation", json=outcome, headers=clinic_a)
    assert posted.status_code == 201, posted.text
    oid = posted.json()["id"]
    assert (await http.get(f"/fhir/Observation/{oid}", headers=clinic_a)).status_code == 200
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    assert (await http.get(f"/fhir/Observation/{oid}", headers=chw)).status_code == 200  # the CHW sees the outcome


async def test_a_clinic_cannot_hand_a_task_or_referral_to_another_organization(http, auth_app, rsa, admin):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC_LOOP + " system/ServiceRequest.u")
    current = (await http.get("/fhir/Task/task-a", headers=clinic_a)).json()
    _refused(await http.put("/fhir/Task/task-a", json={**current, "owner": ref("Organization/clinic-b")},
                            headers=clinic_a), 403, "Task.owner")
    request = (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic_a)).json()
    _refused(await http.put("/fhir/ServiceRequest/sr-a", json={**request, "performer": [ref("Organization/clinic-b")]},
                            headers=clinic_a), 403, "ServiceRequest.performer")
    # the referral's requester (a CHW) may re-assign it
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    mine = (await http.get("/fhir/Task/task-a", headers=chw)).json()
    moved = await http.put("/fhir/Task/task-a", json={**mine, "owner": ref("Organization/clinic-b")}, headers=chw)
    assert moved.status_code == 200, moved.text


async def test_a_clinic_cannot_cite_what_it_does_not_see(http, auth_app, rsa, admin):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC_LOOP + " system/ServiceRequest.u")
    request = (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic_a)).json()
    cites = {**request, "reasonReference": [*request["reasonReference"], ref("Observation/obs-b1")]}
    _refused(await http.put("/fhir/ServiceRequest/sr-a", json=cites, headers=clinic_a), 404, "ServiceRequest.reason")
    task_a = (await http.get("/fhir/Task/task-a", headers=clinic_a)).json()
    _refused(await http.put("/fhir/Task/task-a", json={**task_a, "reasonReference": ref("Observation/obs-b1")},
                            headers=clinic_a), 404, "Task.reason")
    result = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": ref("Patient/pa1"),
              "basedOn": [ref("ServiceRequest/sr-b")]}
    _refused(await http.post("/fhir/Observation", json=result, headers=clinic_a), 404, "Observation.based-on")
    assert (await http.get("/fhir/Observation/obs-b1", headers=clinic_a)).status_code == 404


# ---- CHWs and supervisors ---------------------------------------------------------------------


async def test_a_chw_care_team_cannot_name_a_patient_outside_her_catchment(http, auth_app, admin):
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    assert (await http.get("/fhir/Patient/pb1", headers=chw)).status_code == 404
    team = {"resourceType": "CareTeam", "subject": ref("Patient/pb1"),
            "participant": [{"member": ref("Practitioner/chw-1")}]}
    _refused(await http.post("/fhir/CareTeam", json=team, headers=chw), 404, "CareTeam.subject")
    assert (await http.get("/fhir/Patient/pb1", headers=chw)).status_code == 404
    assert (await http.get("/fhir/Observation/obs-b1", headers=chw)).status_code == 404


async def test_a_chw_cannot_join_a_stranger_to_her_care_team_or_patient(http, auth_app, admin):
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    team = {"resourceType": "CareTeam", "participant": [{"member": ref("Practitioner/chw-1")},
                                                        {"member": ref("Practitioner/chw-3")}]}
    _refused(await http.post("/fhir/CareTeam", json=team, headers=chw), 403, "CareTeam.participant")
    assert (await http.get("/fhir/Patient/pb1", headers=chw)).status_code == 404  # chw-3's patient stays hidden
    patient = {"resourceType": "Patient", "generalPractitioner": [ref("Practitioner/chw-3")]}
    _refused(await http.post("/fhir/Patient", json=patient, headers=chw), 403, "Patient.general-practitioner")
    # herself, or a member of her team (chw-2 shares team-a; chw-4 her Location): allowed
    for gp in ("chw-1", "chw-2", "chw-4"):
        r = await http.post("/fhir/Patient", json={"resourceType": "Patient",
                                                   "generalPractitioner": [ref(f"Practitioner/{gp}")]}, headers=chw)
        assert r.status_code == 201, (gp, r.text)


async def test_a_chw_cannot_assign_herself_to_another_location(http, auth_app, admin):
    other = await http.post("/fhir/Location", json={"resourceType": "Location", "name": "Otro sector"}, headers=admin)
    location = other.json()["id"]
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-3")
    role = {"resourceType": "PractitionerRole", "practitioner": ref("Practitioner/chw-3"),
            "location": [ref("Location/loc-x")]}
    _refused(await http.post("/fhir/PractitionerRole", json=role, headers=chw), 403, "PractitionerRole.")
    assert (await http.get("/fhir/Patient/pa1", headers=chw)).status_code == 404  # loc-x's patients stay hidden
    role["location"] = [ref(f"Location/{location}")]
    _refused(await http.post("/fhir/PractitionerRole", json=role, headers=chw), 403, "PractitionerRole.")
    assert (await http.post("/fhir/PractitionerRole", json=role, headers=admin)).status_code == 201  # staffing: admin


async def test_a_chw_cannot_write_into_a_record_she_does_not_see(http, auth_app, admin):
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    before = await _count(http, admin, "Observation")
    for subject in ("Patient/pb1", "Patient/no-such-patient"):  # hidden and absent: one answer
        observation = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                       "subject": ref(subject), "performer": [ref("Practitioner/chw-1")]}
        r = await http.post("/fhir/Observation", json=observation, headers=chw)
        _refused(r, 404, "Observation.subject")
        assert r.json()["issue"][0]["diagnostics"].endswith("which is not known to this client")
    assert await _count(http, admin, "Observation") == before


async def test_a_transaction_may_refer_to_its_own_entries_in_any_order(http, auth_app, admin):
    """The Android FHIR SDK uploads a day's inserts as PUTs under new UUIDs, in whatever order."""
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    child, weight = str(uuid.uuid4()), str(uuid.uuid4())
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "id": weight, "status": "final", "code": {"text": "weight"},
                      "subject": ref(f"Patient/{child}")},
         "request": {"method": "PUT", "url": f"Observation/{weight}"}},
        {"resource": {"resourceType": "Patient", "id": child}, "request": {"method": "PUT", "url": f"Patient/{child}"}},
    ]}
    r = await http.post("/fhir", json=bundle, headers=chw)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created", "201 Created"]
    assert (await http.get(f"/fhir/Patient/{child}", headers=chw)).status_code == 200  # her own write
