"""The referral Task's lifecycle (R4 task.html state machine): one test per transition and rule.

Real tokens: the owner clinic signs in with backend-services keys bound to its Organization, the
CHW through the login page. Every refusal is an OperationOutcome naming its rule, and leaves the
Task as it was.
"""

from __future__ import annotations

import httpx
import pytest

from tests.auth import support
from tests.auth.support import bearer, register
from tests.auth.test_policies import clinic_token, ref, user_token

CLINIC_LOOP = "system/ServiceRequest.rs system/Task.rus system/Patient.rs system/Observation.crs"

WORLD = [
    {"resourceType": "Organization", "id": "clinic-a", "name": "Centro de Salud A"},
    {"resourceType": "Organization", "id": "clinic-b", "name": "Centro de Salud B"},
    {"resourceType": "Practitioner", "id": "chw-1"},
    {"resourceType": "Patient", "id": "pa1", "generalPractitioner": [ref("Practitioner/chw-1")]},
    {"resourceType": "Patient", "id": "pa2", "generalPractitioner": [ref("Practitioner/chw-1")]},
    {"resourceType": "Observation", "id": "hb", "status": "final", "code": {"text": "hemoglobin"},
     "subject": ref("Patient/pa1")},
    {"resourceType": "Observation", "id": "whz", "status": "final", "code": {"text": "weight-for-height z"},
     "subject": ref("Patient/pa1")},
    {"resourceType": "Observation", "id": "unrelated", "status": "final", "code": {"text": "weight"},
     "subject": ref("Patient/pa1")},
    {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order",
     "subject": ref("Patient/pa1"), "requester": ref("Practitioner/chw-1"),
     "reasonReference": [ref("Observation/hb")], "supportingInfo": [ref("Observation/whz")]},
]


def task(status: str, tid: str = "t-1") -> dict:
    return {"resourceType": "Task", "id": tid, "status": status, "intent": "order",
            "focus": ref("ServiceRequest/sr-1"), "for": ref("Patient/pa1"),
            "requester": ref("Practitioner/chw-1"), "owner": ref("Organization/clinic-a")}


@pytest.fixture
async def admin(http, auth_app, rsa) -> dict:
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    headers = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in WORLD]}
    r = await http.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    return headers


async def _as(who: str, http, auth_app, rsa) -> dict:
    if who == "chw":
        return await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    return await clinic_token(http, auth_app, rsa, who, CLINIC_LOOP)


async def _move(http, headers: dict, status: str, **changes) -> httpx.Response:
    current = (await http.get("/fhir/Task/t-1", headers=headers)).json()
    return await http.put("/fhir/Task/t-1", json={**current, "status": status, **changes}, headers=headers)


def _refused(response, status: int, rule: str, element: str = "Task.status") -> None:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert rule in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"] == [element]


ALLOWED = [
    ("requested", "received", "clinic-a"),
    ("requested", "accepted", "clinic-a"),
    ("requested", "rejected", "clinic-a"),
    ("received", "accepted", "clinic-a"),
    ("received", "rejected", "clinic-a"),
    ("accepted", "ready", "clinic-a"),
    ("accepted", "in-progress", "clinic-a"),
    ("ready", "in-progress", "clinic-a"),
    ("in-progress", "on-hold", "clinic-a"),
    ("on-hold", "in-progress", "clinic-a"),
    ("in-progress", "completed", "clinic-a"),
    ("in-progress", "failed", "clinic-a"),
    ("on-hold", "failed", "clinic-a"),
    ("draft", "requested", "chw"),
    ("draft", "cancelled", "chw"),
    ("requested", "cancelled", "chw"),
    ("accepted", "cancelled", "chw"),
    ("in-progress", "cancelled", "chw"),
    ("on-hold", "cancelled", "chw"),
]


@pytest.mark.parametrize(("before", "after", "who"), ALLOWED, ids=[f"{b}->{a}" for b, a, _ in ALLOWED])
async def test_each_transition_of_the_state_machine_by_whom_it_belongs_to(http, auth_app, rsa, admin,
                                                                         before, after, who):
    assert (await http.put("/fhir/Task/t-1", json=task(before), headers=admin)).status_code == 201
    headers = await _as(who, http, auth_app, rsa)
    r = await _move(http, headers, after)
    assert r.status_code == 200, r.text
    assert (await http.get("/fhir/Task/t-1", headers=admin)).json()["status"] == after


NOT_IN_THE_MACHINE = [
    ("requested", "completed", "clinic-a"),
    ("requested", "in-progress", "clinic-a"),
    ("completed", "requested", "admin"),
    ("completed", "in-progress", "clinic-a"),
    ("cancelled", "requested", "chw"),
    ("rejected", "accepted", "clinic-a"),
    ("failed", "in-progress", "clinic-a"),
]


@pytest.mark.parametrize(("before", "after", "who"), NOT_IN_THE_MACHINE,
                         ids=[f"{b}->{a}" for b, a, _ in NOT_IN_THE_MACHINE])
async def test_a_move_the_state_machine_lacks_is_409_for_everyone(http, auth_app, rsa, admin, before, after, who):
    assert (await http.put("/fhir/Task/t-1", json=task(before), headers=admin)).status_code == 201
    headers = admin if who == "admin" else await _as(who, http, auth_app, rsa)
    _refused(await _move(http, headers, after), 409, "rule task-state-machine")
    assert (await http.get("/fhir/Task/t-1", headers=admin)).json()["meta"]["versionId"] == "1"


async def test_the_chw_cannot_complete_the_clinics_task(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("in-progress"), headers=admin)).status_code == 201
    chw = await _as("chw", http, auth_app, rsa)
    _refused(await _move(http, chw, "completed"), 403, "rule task-owner-moves")
    patch = [{"op": "replace", "path": "/status", "value": "completed"}]
    r = await http.patch("/fhir/Task/t-1", json=patch, headers={**chw, "Content-Type": "application/json-patch+json"})
    _refused(r, 403, "rule task-owner-moves")
    assert (await http.get("/fhir/Task/t-1", headers=admin)).json()["status"] == "in-progress"


async def test_the_clinic_cannot_cancel_the_requesters_task(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("accepted"), headers=admin)).status_code == 201
    clinic = await _as("clinic-a", http, auth_app, rsa)
    _refused(await _move(http, clinic, "cancelled"), 403, "rule task-requester-moves")


async def test_another_clinic_does_not_even_see_the_task(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("requested"), headers=admin)).status_code == 201
    other = await _as("clinic-b", http, auth_app, rsa)
    r = await http.patch("/fhir/Task/t-1", json=[{"op": "replace", "path": "/status", "value": "accepted"}],
                         headers={**other, "Content-Type": "application/json-patch+json"})
    assert r.status_code == 404


@pytest.mark.parametrize(("element", "value"), [
    ("for", ref("Patient/pa2")), ("focus", ref("ServiceRequest/sr-2")), ("requester", ref("Practitioner/chw-9")),
])
async def test_what_the_referral_is_about_and_who_asked_are_fixed(http, auth_app, rsa, admin, element, value):
    assert (await http.put("/fhir/Task/t-1", json=task("requested"), headers=admin)).status_code == 201
    for headers in (await _as("chw", http, auth_app, rsa), admin):
        _refused(await _move(http, headers, "requested", **{element: value}), 422, "rule task-fixed-elements",
                 f"Task.{element}")
    assert (await http.get("/fhir/Task/t-1", headers=admin)).json()["meta"]["versionId"] == "1"


async def test_a_referral_task_is_created_as_asked_not_as_done(http, auth_app, rsa, admin):
    chw = await _as("chw", http, auth_app, rsa)
    new = {k: v for k, v in task("completed").items() if k != "id"}
    _refused(await http.post("/fhir/Task", json=new, headers=chw), 422, "rule task-creation-status")
    in_bundle = {"resourceType": "Bundle", "type": "transaction",
                 "entry": [{"resource": new, "request": {"method": "POST", "url": "Task"}}]}
    _refused(await http.post("/fhir", json=in_bundle, headers=chw), 422, "rule task-creation-status")
    assert (await http.post("/fhir/Task", json={**new, "status": "requested"}, headers=chw)).status_code == 201


async def _request_status(http, admin: dict) -> str:
    return str((await http.get("/fhir/ServiceRequest/sr-1", headers=admin)).json()["status"])


async def test_the_service_request_completes_with_its_task_and_the_chw_sees_the_outcome(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("in-progress"), headers=admin)).status_code == 201
    clinic = await _as("clinic-a", http, auth_app, rsa)
    outcome = {"resourceType": "Observation", "status": "final", "code": {"text": "hemoglobin at the clinic"},
               "subject": ref("Patient/pa1"), "basedOn": [ref("ServiceRequest/sr-1")],
               "valueQuantity": {"value": 9.8, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"}}
    posted = await http.post("/fhir/Observation", json=outcome, headers=clinic)
    assert posted.status_code == 201, posted.text
    outcome_ref = f"Observation/{posted.json()['id']}"
    output = [{"type": {"text": "outcome"}, "valueReference": ref(outcome_ref)}]
    r = await _move(http, clinic, "completed", output=output)
    assert r.status_code == 200, r.text
    assert await _request_status(http, admin) == "completed"
    chw = await _as("chw", http, auth_app, rsa)
    seen = (await http.get("/fhir/Task/t-1", headers=chw)).json()
    assert seen["output"][0]["valueReference"]["reference"] == outcome_ref
    assert (await http.get(f"/fhir/{outcome_ref}", headers=chw)).status_code == 200


async def test_the_service_request_is_revoked_when_the_requester_cancels(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("accepted"), headers=admin)).status_code == 201
    chw = await _as("chw", http, auth_app, rsa)
    assert (await _move(http, chw, "cancelled")).status_code == 200
    assert await _request_status(http, admin) == "revoked"


async def test_a_failed_or_rejected_task_leaves_the_request_open_to_refer_elsewhere(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("requested"), headers=admin)).status_code == 201
    clinic = await _as("clinic-a", http, auth_app, rsa)
    assert (await _move(http, clinic, "rejected")).status_code == 200
    assert await _request_status(http, admin) == "active"


async def test_the_clinic_sees_what_its_referral_cites_and_nothing_else(http, auth_app, rsa, admin):
    assert (await http.put("/fhir/Task/t-1", json=task("requested"), headers=admin)).status_code == 201
    clinic = await _as("clinic-a", http, auth_app, rsa)
    statuses = {o: (await http.get(f"/fhir/Observation/{o}", headers=clinic)).status_code
                for o in ("hb", "whz", "unrelated")}
    assert statuses == {"hb": 200, "whz": 200, "unrelated": 404}  # reasonReference, supportingInfo, neither
    found = (await http.get("/fhir/ServiceRequest?supporting-info=Observation/whz", headers=clinic)).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["sr-1"]
    other = await _as("clinic-b", http, auth_app, rsa)
    assert (await http.get("/fhir/Observation/whz", headers=other)).status_code == 404
