"""Every write checks the scope of what it does, on every path: HTTP, transaction and batch entries,
conditional writes, update-as-create and PATCH. A create needs "c", an update "u", a deletion "d",
whichever request made them; AuditEvents are written by the server only.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.auth import support
from tests.auth.support import bearer, register
from tests.auth.test_policies import clinic_token, ref
from tests.auth.test_policies import world as world  # a fixture

pytestmark = pytest.mark.usefixtures("world")
IDENTIFIER = "https://puente.example.org/fhir/sid/referral"


@pytest.fixture
async def admin(http, world) -> dict:
    headers = bearer(world)
    request = {"resourceType": "ServiceRequest", "id": "sr-a", "status": "active", "intent": "order",
               "identifier": [{"system": IDENTIFIER, "value": "REF-1"}], "subject": ref("Patient/pa1"),
               "performer": [ref("Organization/clinic-a")]}
    assert (await http.put("/fhir/ServiceRequest/sr-a", json=request, headers=headers)).status_code == 200
    return headers


def condition() -> dict:
    return {"resourceType": "Condition", "subject": ref("Patient/pa1"), "code": {"text": "anaemia"}}


def new_task() -> dict:
    return {"resourceType": "Task", "status": "requested", "intent": "order", "focus": ref("ServiceRequest/sr-a"),
            "for": ref("Patient/pa1"), "owner": ref("Organization/clinic-a")}


def referral(value: str) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "identifier": [{"system": IDENTIFIER, "value": value}], "subject": ref("Patient/pa1"),
            "performer": [ref("Organization/clinic-a")]}


def _cases() -> list[tuple[str, str, str, object, str, str, int, int]]:
    """(name, method, url, body, scopes without the letter, scopes with it, status then, status now)."""
    fresh = str(uuid.uuid4())
    return [
        ("create", "POST", "Condition", condition(), "system/Condition.rus", "system/Condition.c", 403, 201),
        ("update-as-create", "PUT", f"Task/{fresh}", {**new_task(), "id": fresh},
         "system/Task.rus", "system/Task.cu", 403, 201),
        ("update", "PUT", "Task/task-a", "TASK-A", "system/Task.crs", "system/Task.u", 403, 200),
        ("conditional update that creates", "PUT", f"ServiceRequest?identifier={IDENTIFIER}|REF-NEW",
         referral("REF-NEW"), "system/ServiceRequest.rus", "system/ServiceRequest.crs", 403, 201),
        ("conditional update that updates", "PUT", f"ServiceRequest?identifier={IDENTIFIER}|REF-1",
         referral("REF-1"), "system/ServiceRequest.crs", "system/ServiceRequest.rus", 403, 200),
        ("patch", "PATCH", "Task/task-a", [{"op": "replace", "path": "/status", "value": "accepted"}],
         "system/Task.crs", "system/Task.rus", 403, 200),
        ("delete", "DELETE", "Observation/obs-result", None, "system/Observation.crus", "system/Observation.d",
         403, 204),
        ("conditional delete", "DELETE", "Observation?_id=obs-result", None, "system/Observation.crus",
         "system/Observation.ds", 403, 204),
    ]


CASES = _cases()


async def _body(http, headers: dict, body: object) -> object:
    if body == "TASK-A":
        return (await http.get("/fhir/Task/task-a", headers=headers)).json()
    return body


async def _send(http, headers: dict, method: str, url: str, body: object, path: str) -> int:
    """Send one write as an HTTP request, or as the only entry of a transaction or a batch."""
    if path == "http":
        if method == "PATCH":
            r = await http.patch(f"/fhir/{url}", content=json.dumps(body),
                                 headers={**headers, "Content-Type": "application/json-patch+json"})
        else:
            r = await http.request(method, f"/fhir/{url}", json=body, headers=headers)
        return r.status_code
    entry: dict = {"request": {"method": method, "url": url}}
    if method == "PATCH":
        entry["resource"] = {"resourceType": "Binary", "contentType": "application/json-patch+json",
                             "data": base64.b64encode(json.dumps(body).encode()).decode()}
    elif body is not None:
        entry["resource"] = body
    r = await http.post("/fhir", json={"resourceType": "Bundle", "type": path, "entry": [entry]}, headers=headers)
    if path == "transaction":
        return r.status_code if r.status_code != 200 else int(r.json()["entry"][0]["response"]["status"][:3])
    assert r.status_code == 200, r.text
    return int(r.json()["entry"][0]["response"]["status"][:3])


@pytest.mark.parametrize("path", ["http", "transaction", "batch"])
@pytest.mark.parametrize(("name", "method", "url", "body", "without", "with_", "refused", "allowed"), CASES,
                         ids=[c[0] for c in CASES])
async def test_each_write_needs_the_letter_of_what_it_does(
    http, auth_app, rsa, admin, path, name, method, url, body, without, with_, refused, allowed
):
    base = "system/Task.rs system/ServiceRequest.rs system/Patient.rs system/Observation.rs"
    lacking = await clinic_token(http, auth_app, rsa, "clinic-a", f"{base} {without}")
    assert await _send(http, lacking, method, url, await _body(http, lacking, body), path) == refused
    granted = await clinic_token(http, auth_app, rsa, "clinic-a", f"{base} {with_}")
    assert await _send(http, granted, method, url, await _body(http, granted, body), path) == allowed


@pytest.mark.parametrize("path", ["http", "transaction", "batch"])
async def test_nobody_writes_audit_events_but_the_server(http, auth_app, rsa, admin, path):
    client_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    superuser = bearer(await support.access_token(http, client_id, rsa, "system/*.cruds"))
    forged = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-12-01T10:00:00Z",
              "agent": [{"requestor": True, "who": {"display": "nobody"}}], "source": {"observer": {"display": "x"}}}
    fresh = str(uuid.uuid4())
    for method, url, body in (("POST", "AuditEvent", forged), ("PUT", f"AuditEvent/{fresh}", {**forged, "id": fresh}),
                              ("PUT", "AuditEvent?_id=forged", forged)):
        assert await _send(http, superuser, method, url, body, path) == 403, (method, url)
    events = (await http.get("/fhir/AuditEvent?agent-name=nobody", headers=superuser)).json()
    assert not events.get("entry")
