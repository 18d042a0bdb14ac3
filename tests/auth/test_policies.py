"""Access policies, as the repository's query filters: clinics see their referrals, CHWs their catchment.

These rules read the search_reference index that every write fills (storage.version_writes).
"""

from __future__ import annotations

import pytest

from tests.auth import support
from tests.auth.support import REDIRECT, add_user, bearer, register, user_tokens


def ref(reference: str) -> dict:
    return {"reference": reference}


def obs(oid: str, subject: str, performer: str, **extra) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "hemoglobin"},
            "subject": ref(subject), "performer": [ref(performer)], **extra}


def referral(sid: str, subject: str, **extra) -> dict:
    return {"resourceType": "ServiceRequest", "id": sid, "status": "active", "intent": "order",
            "subject": ref(subject), **extra}


def task(tid: str, focus: str, patient: str, owner: str) -> dict:
    return {"resourceType": "Task", "id": tid, "status": "requested", "intent": "order", "focus": ref(focus),
            "for": ref(patient), "owner": ref(owner)}


WORLD = [
    {"resourceType": "Organization", "id": "clinic-a", "name": "Centro de Salud A"},
    {"resourceType": "Organization", "id": "clinic-b", "name": "Centro de Salud B"},
    *({"resourceType": "Practitioner", "id": p} for p in ("chw-1", "chw-2", "chw-3", "chw-4", "sup-a", "sup-b")),
    {"resourceType": "Location", "id": "loc-x", "name": "Alto Trujillo"},
    {"resourceType": "CareTeam", "id": "team-a", "participant": [{"member": ref(f"Practitioner/{p}")}
                                                                 for p in ("sup-a", "chw-1", "chw-2")]},
    {"resourceType": "CareTeam", "id": "team-b", "participant": [{"member": ref(f"Practitioner/{p}")}
                                                                 for p in ("sup-b", "chw-3")]},
    {"resourceType": "PractitionerRole", "id": "role-1", "practitioner": ref("Practitioner/chw-1"),
     "location": [ref("Location/loc-x")]},
    {"resourceType": "PractitionerRole", "id": "role-4", "practitioner": ref("Practitioner/chw-4"),
     "location": [ref("Location/loc-x")]},
    *({"resourceType": "Patient", "id": pid, "generalPractitioner": [ref(f"Practitioner/{gp}")]}
      for pid, gp in (("pa1", "chw-1"), ("pa2", "chw-2"), ("pb1", "chw-3"), ("px", "chw-4"))),
    {"resourceType": "Patient", "id": "pz"},
    obs("obs-a1", "Patient/pa1", "Practitioner/chw-2"),
    obs("obs-b1", "Patient/pb1", "Practitioner/chw-3"),
    obs("obs-z", "Patient/pz", "Practitioner/chw-1"),  # chw-1 measured someone outside their catchment
    obs("obs-z2", "Patient/pz", "Practitioner/chw-2"),
    referral("sr-a", "Patient/pa1", performer=[ref("Organization/clinic-a")],
             reasonReference=[ref("Observation/obs-a1")]),
    referral("sr-b", "Patient/pb1", performer=[ref("Organization/clinic-b")]),
    referral("sr-c", "Patient/pb1"),  # no performer: addressed through its Task
    task("task-a", "ServiceRequest/sr-a", "Patient/pa1", "Organization/clinic-a"),
    task("task-c", "ServiceRequest/sr-c", "Patient/pb1", "Organization/clinic-a"),
    obs("obs-result", "Patient/pa1", "Practitioner/chw-2", basedOn=[ref("ServiceRequest/sr-a")]),
]


@pytest.fixture
async def world(http, auth_app, rsa):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    token = await support.access_token(http, admin_id, rsa, "system/*.cruds")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}
        for resource in WORLD
    ]}
    r = await http.post("/fhir", json=bundle, headers=bearer(token))
    assert r.status_code == 200, r.text
    return token


async def clinic_token(http, auth_app, rsa, clinic: str, scope: str = "system/*.rs system/Task.u") -> dict:
    client_id, _ = await register(auth_app, scopes=scope, keys=(rsa,), organization=f"Organization/{clinic}")
    return bearer(await support.access_token(http, client_id, rsa, scope))


async def user_token(http, auth_app, username: str, practitioner: str, role: str = "chw") -> dict:
    client_id, _ = await register(
        auth_app, scopes="user/*.cruds offline_access", public=True, redirect_uris=(REDIRECT,)
    )
    await add_user(auth_app, username, practitioner, role)
    return bearer((await user_tokens(http, client_id, username))["access_token"])


async def statuses(http, headers: dict, references: list[str]) -> dict[str, int]:
    return {r: (await http.get(f"/fhir/{r}", headers=headers)).status_code for r in references}


def visible(result: dict[str, int]) -> set[str]:
    assert set(result.values()) <= {200, 404}, result  # never 403: existence does not leak
    return {r for r, status in result.items() if status == 200}


ALL = [f"{r['resourceType']}/{r['id']}" for r in WORLD]


async def test_clinic_sees_its_referrals_their_patients_and_results_and_nothing_else(http, auth_app, rsa, world):
    headers = await clinic_token(http, auth_app, rsa, "clinic-a")
    seen = visible(await statuses(http, headers, ALL))
    expected = {
        "Organization/clinic-a",
        "ServiceRequest/sr-a", "ServiceRequest/sr-c",  # performer; the focus of its Task
        "Task/task-a", "Task/task-c",  # owner
        "Patient/pa1", "Patient/pb1",  # the referred patients
        "Observation/obs-result",  # based-on its referral
        "Observation/obs-a1",  # the referral's reason (Puente's reason-reference parameter)
    }
    assert seen == expected


async def test_clinic_asking_for_another_clinics_referral_gets_404(http, auth_app, rsa, world):
    headers = await clinic_token(http, auth_app, rsa, "clinic-b")
    r = await http.get("/fhir/ServiceRequest/sr-a", headers=headers)
    assert r.status_code == 404
    assert r.json()["issue"][0]["code"] == "not-found"
    assert (await http.get("/fhir/ServiceRequest/sr-a/_history/1", headers=headers)).status_code == 404
    assert (await http.get("/fhir/ServiceRequest/sr-a/_history", headers=headers)).status_code == 404
    assert (await http.get("/fhir/ServiceRequest/sr-b", headers=headers)).status_code == 200


async def test_clinic_sees_the_observation_named_as_the_referrals_reason(http, auth_app, rsa, world):
    headers = await clinic_token(http, auth_app, rsa, "clinic-a")
    assert (await http.get("/fhir/Observation/obs-a1", headers=headers)).status_code == 200


async def test_clinic_history_shows_only_its_own(http, auth_app, rsa, world):
    headers = await clinic_token(http, auth_app, rsa, "clinic-a")
    history = (await http.get("/fhir/ServiceRequest/_history", headers=headers)).json()
    assert {e["resource"]["id"] for e in history["entry"]} == {"sr-a", "sr-c"}
    assert history["total"] == 2


async def test_clinic_updates_its_task_but_cannot_touch_another(http, auth_app, rsa, world):
    headers = await clinic_token(http, auth_app, rsa, "clinic-a", "system/*.rs system/Task.ru")
    task = (await http.get("/fhir/Task/task-a", headers=headers)).json()
    task["status"] = "accepted"
    assert (await http.put("/fhir/Task/task-a", json=task, headers=headers)).status_code == 200
    other = await clinic_token(http, auth_app, rsa, "clinic-b", "system/*.rs system/Task.ru")
    r = await http.patch("/fhir/Task/task-a", headers={**other, "Content-Type": "application/json-patch+json"},
                         json=[{"op": "replace", "path": "/status", "value": "rejected"}])
    assert r.status_code == 404


async def test_chw_logs_in_and_cannot_read_another_teams_patients(http, auth_app, world):
    headers = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    seen = visible(await statuses(http, headers, ALL))
    assert {r for r in seen if r.startswith("Patient/")} == {"Patient/pa1", "Patient/pa2", "Patient/px"}
    assert "Observation/obs-a1" in seen  # about a patient of the team
    assert "Observation/obs-z" in seen  # their own work, even outside their catchment
    assert "Observation/obs-z2" not in seen  # a teammate's work outside the catchment
    assert "Observation/obs-b1" not in seen and "ServiceRequest/sr-b" not in seen and "Task/task-c" not in seen
    assert {"Organization/clinic-b", "Location/loc-x", "Practitioner/chw-3", "CareTeam/team-b"} <= seen
    other_team = await user_token(http, auth_app, "juan", "Practitioner/chw-3")
    assert (await http.get("/fhir/Patient/pa1", headers=other_team)).status_code == 404
    assert (await http.get("/fhir/Observation/obs-a1", headers=other_team)).status_code == 404


async def test_chw_sync_by_history_stays_in_the_catchment(http, auth_app, world):
    headers = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    patients = (await http.get("/fhir/Patient/_history", headers=headers)).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == {"pa1", "pa2", "px"}
    observations = (await http.get("/fhir/Observation/_history", headers=headers)).json()
    assert {e["resource"]["id"] for e in observations["entry"]} == {"obs-a1", "obs-z", "obs-result"}


async def test_supervisor_sees_their_chws_patients_and_work(http, auth_app, world):
    headers = await user_token(http, auth_app, "lucia", "Practitioner/sup-a", role="supervisor")
    seen = visible(await statuses(http, headers, ALL))
    assert {r for r in seen if r.startswith("Patient/")} == {"Patient/pa1", "Patient/pa2"}
    assert {"Observation/obs-z", "Observation/obs-z2"} <= seen  # their CHWs' work
    assert "Observation/obs-b1" not in seen


async def test_admin_sees_everything(http, auth_app, rsa, world):
    assert visible(await statuses(http, bearer(world), ALL)) == set(ALL)


async def test_client_bound_to_nothing_sees_nothing(http, auth_app, rsa, world):
    client_id, _ = await register(auth_app, scopes="system/*.rs", keys=(rsa,))
    headers = bearer(await support.access_token(http, client_id, rsa, "system/*.rs"))
    assert visible(await statuses(http, headers, ALL)) == set()


async def test_audit_events_are_for_admins_only(http, auth_app, rsa, world):
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    assert (await http.get("/fhir/AuditEvent/_history", headers=chw)).status_code == 403
    clinic = await clinic_token(http, auth_app, rsa, "clinic-a")
    assert (await http.get("/fhir/AuditEvent/_history", headers=clinic)).status_code == 403
    assert (await http.get("/fhir/AuditEvent/_history", headers=bearer(world))).status_code == 200


async def test_search_and_includes_only_return_what_the_caller_may_see(http, auth_app, rsa, world):
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    patients = (await http.get("/fhir/Patient", headers=chw)).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == {"pa1", "pa2", "px"}
    observations = (await http.get("/fhir/Observation?_include=Observation:subject", headers=chw)).json()
    found = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in observations["entry"]}
    # obs-z is theirs, but its patient pz is not in their catchment: the _include does not add it
    assert found == {"Observation/obs-a1", "Observation/obs-z", "Observation/obs-result", "Patient/pa1"}
    clinic = await clinic_token(http, auth_app, rsa, "clinic-b")
    requests = (await http.get("/fhir/ServiceRequest?_revinclude=Task:focus&_include=ServiceRequest:subject",
                               headers=clinic)).json()
    found = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in requests["entry"]}
    assert found == {"ServiceRequest/sr-b", "Patient/pb1"}
    chained = (await http.get("/fhir/Observation?subject.general-practitioner=Practitioner/chw-3",
                              headers=chw)).json()
    assert chained.get("entry", []) == []  # obs-b1 exists, but not for this CHW


# ---- deletions: whoever could see a resource sees that it was deleted, and nothing more ------------------


async def test_chw_sees_a_deletion_in_their_catchment_and_syncs_it(http, auth_app, world):
    admin = bearer(world)
    chw = await user_token(http, auth_app, "rosa", "Practitioner/chw-1")
    assert (await http.delete("/fhir/Observation/obs-a1", headers=admin)).status_code == 204
    assert (await http.get("/fhir/Observation/obs-a1", headers=chw)).status_code == 410
    history = (await http.get("/fhir/Observation/_history", headers=chw)).json()
    deletions = [e for e in history["entry"] if e["request"]["method"] == "DELETE"]
    assert [e["fullUrl"].rsplit("/", 1)[-1] for e in deletions] == ["obs-a1"]
    assert (await http.get("/fhir/Observation/obs-a1/_history/1", headers=chw)).status_code == 200
    found = (await http.get("/fhir/Observation?subject=Patient/pa1", headers=chw)).json()
    assert "obs-a1" not in {e["resource"]["id"] for e in found.get("entry", [])}  # search: current only
    other_team = await user_token(http, auth_app, "juan", "Practitioner/chw-3")
    assert (await http.get("/fhir/Observation/obs-a1", headers=other_team)).status_code == 404  # no leak


async def test_a_deleted_referral_shows_the_clinic_its_deletion_but_no_longer_its_patient(http, auth_app, rsa, world):
    admin = bearer(world)
    clinic = await clinic_token(http, auth_app, rsa, "clinic-a")
    assert (await http.get("/fhir/Patient/pa1", headers=clinic)).status_code == 200
    for gone in ("Task/task-a", "ServiceRequest/sr-a"):
        assert (await http.delete(f"/fhir/{gone}", headers=admin)).status_code == 204
    assert (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic)).status_code == 410
    assert (await http.get("/fhir/Task/task-a", headers=clinic)).status_code == 410
    history = (await http.get("/fhir/ServiceRequest/_history", headers=clinic)).json()
    assert {(e["fullUrl"].rsplit("/", 1)[-1], e["request"]["method"]) for e in history["entry"]} >= {
        ("sr-a", "DELETE"), ("sr-a", "PUT")}
    # nothing is granted through a deleted referral: its patient, reason and result are gone from view
    for hidden in ("Patient/pa1", "Observation/obs-a1", "Observation/obs-result"):
        assert (await http.get(f"/fhir/{hidden}", headers=clinic)).status_code == 404, hidden
    other = await clinic_token(http, auth_app, rsa, "clinic-b")
    assert (await http.get("/fhir/ServiceRequest/sr-a", headers=other)).status_code == 404


async def test_a_resource_written_again_after_its_deletion_is_seen_as_it_is_now(http, auth_app, rsa, world):
    admin = bearer(world)
    clinic = await clinic_token(http, auth_app, rsa, "clinic-a")
    assert (await http.delete("/fhir/ServiceRequest/sr-a", headers=admin)).status_code == 204
    moved = referral("sr-a", "Patient/pb1", performer=[ref("Organization/clinic-b")])
    assert (await http.put("/fhir/ServiceRequest/sr-a", json=moved, headers=admin)).status_code in (200, 201)
    # now addressed to clinic-b: clinic-a's view is the live one (task-a still focuses it), not the tombstone
    assert (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic)).status_code == 200
    assert (await http.delete("/fhir/Task/task-a", headers=admin)).status_code == 204
    assert (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic)).status_code == 404
    clinic_b = await clinic_token(http, auth_app, rsa, "clinic-b")
    assert (await http.get("/fhir/ServiceRequest/sr-a", headers=clinic_b)).status_code == 200
