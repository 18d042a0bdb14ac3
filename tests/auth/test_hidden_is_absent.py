"""A resource the caller may not see answers exactly as one that does not exist, for every interaction.

Clinic A probes clinic B's patient and referral (which exist) and ids nobody ever used: the status
and the OperationOutcome are the same but for the id, and nothing of B's changes.
"""

from __future__ import annotations

import json

import pytest

from tests.auth.support import bearer
from tests.auth.test_policies import clinic_token, ref
from tests.auth.test_policies import world as world  # a fixture

pytestmark = pytest.mark.usefixtures("world")
WRITER = "system/*.cruds"


@pytest.fixture
async def hidden(http, world) -> dict:
    """Clinic B's patient and referral, which clinic A cannot see."""
    admin = bearer(world)
    await http.put("/fhir/Patient/pb2", json={"resourceType": "Patient", "id": "pb2", "birthDate": "2024-02-01"},
                   headers=admin)
    await http.put("/fhir/ServiceRequest/sr-b2", json={
        "resourceType": "ServiceRequest", "id": "sr-b2", "status": "active", "intent": "order",
        "identifier": [{"system": "urn:b", "value": "B-2"}], "subject": ref("Patient/pb2"),
        "performer": [ref("Organization/clinic-b")]}, headers=admin)
    return admin


def _probes(resource_type: str, rid: str) -> list[tuple[str, str, str, object]]:
    body = {"resourceType": resource_type, "id": rid}
    if resource_type == "ServiceRequest":
        body.update(status="active", intent="order", subject=ref("Patient/pa1"))
    return [
        ("read", "GET", f"{resource_type}/{rid}", None),
        ("vread", "GET", f"{resource_type}/{rid}/_history/1", None),
        ("history", "GET", f"{resource_type}/{rid}/_history", None),
        ("update", "PUT", f"{resource_type}/{rid}", body),
        ("patch", "PATCH", f"{resource_type}/{rid}", [{"op": "replace", "path": "/id", "value": rid}]),
        ("delete", "DELETE", f"{resource_type}/{rid}", None),
        ("conditional update with its id", "PUT", f"{resource_type}?_id={rid}-other", body),
        ("conditional delete", "DELETE", f"{resource_type}?_id={rid}", None),
    ]


async def _answer(http, headers: dict, method: str, url: str, body: object, rid: str) -> tuple[int, str]:
    if method == "PATCH":
        r = await http.patch(f"/fhir/{url}", content=json.dumps(body),
                             headers={**headers, "Content-Type": "application/json-patch+json"})
    else:
        r = await http.request(method, f"/fhir/{url}", json=body, headers=headers)
    return r.status_code, r.text.replace(rid, "<id>")


@pytest.mark.parametrize(("resource_type", "hidden_id", "absent_id"),
                         [("Patient", "pb2", "pb9"), ("ServiceRequest", "sr-b2", "sr-b9")])
async def test_every_interaction_answers_a_hidden_resource_as_an_absent_one(
    http, auth_app, rsa, hidden, resource_type, hidden_id, absent_id
):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", WRITER)
    for (name, method, url, body), (_, _, absent_url, absent_body) in zip(
        _probes(resource_type, hidden_id), _probes(resource_type, absent_id), strict=True
    ):
        seen = await _answer(http, clinic_a, method, url, body, hidden_id)
        unknown = await _answer(http, clinic_a, method, absent_url, absent_body, absent_id)
        assert seen == unknown, name
        assert seen[0] in (404, 204), (name, seen)
    # and nothing of clinic B's changed
    history = (await http.get(f"/fhir/{resource_type}/{hidden_id}/_history", headers=hidden)).json()
    assert [e["response"]["status"] for e in history["entry"]] == ["201 Created"]


async def test_operations_answer_a_hidden_patient_as_an_absent_one(http, auth_app, rsa, hidden):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", WRITER)
    for operation in ("$nutrition-status", "$growth", "$immds-forecast"):
        seen = await http.get(f"/fhir/Patient/pb2/{operation}", headers=clinic_a)
        unknown = await http.get(f"/fhir/Patient/pb9/{operation}", headers=clinic_a)
        assert seen.status_code == unknown.status_code == 404, operation
        assert seen.text.replace("pb2", "<id>") == unknown.text.replace("pb9", "<id>"), operation


async def test_a_conditional_create_never_reveals_a_match_it_may_not_see(http, auth_app, rsa, hidden):
    """The match is clinic B's: clinic A creates its own (documented: a supervisor merges duplicates)."""
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", WRITER)
    mine = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": ref("Patient/pa1"),
            "identifier": [{"system": "urn:b", "value": "B-2"}], "performer": [ref("Organization/clinic-a")]}
    conditional = {**clinic_a, "If-None-Exist": "identifier=urn:b|B-2"}
    first = await http.post("/fhir/ServiceRequest", json=mine, headers=conditional)
    assert first.status_code == 201 and first.json()["id"] != "sr-b2"
    again = await http.post("/fhir/ServiceRequest", json=mine, headers=conditional)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]  # its own, found again
