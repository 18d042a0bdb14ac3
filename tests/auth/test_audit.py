"""Audit: an AuditEvent for every interaction, stored off the request path, readable by admins only."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from api import services
from api.audit import AuditNotStored, AuditWriter, audit_event
from auth.principal import Principal
from fhir_mappings import fhir_json
from fhir_mappings.validation import validate_resource
from tests.auth import support
from tests.auth.support import REDIRECT, add_user, bearer, register, user_tokens


async def audit_trail(http, auth_app, admin_headers) -> list[dict]:
    await services.of_app(auth_app).audit.flush()
    r = await http.get("/fhir/AuditEvent/_history?_count=500", headers=admin_headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def find(events: list[dict], code: str, what: str | None = None) -> list[dict]:
    return [
        e for e in events
        if e["subtype"][0]["code"] == code
        and (what is None or e.get("entity", [{}])[0].get("what", {}).get("reference") == what)
    ]


async def test_every_interaction_is_recorded_with_who_what_when_outcome_and_source(http, auth_app, rsa):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    created = await http.post("/fhir/Patient", json={"resourceType": "Patient", "generalPractitioner": [
        {"reference": "Practitioner/chw-1"}]}, headers=admin)
    patient_id = created.json()["id"]
    app_id, _ = await register(auth_app, scopes="user/*.cruds", public=True, redirect_uris=(REDIRECT,))
    user_id = await add_user(auth_app, "rosa", "Practitioner/chw-1")
    chw = bearer((await user_tokens(http, app_id, "rosa", scope="user/*.cruds"))["access_token"])
    assert (await http.get(f"/fhir/Patient/{patient_id}", headers=chw)).status_code == 200
    assert (await http.get("/fhir/Patient/somebody-else", headers=chw)).status_code == 404
    assert (await http.get(f"/fhir/Patient/{patient_id}")).status_code == 401

    events = await audit_trail(http, auth_app, admin)

    [create] = find(events, "create", f"Patient/{patient_id}")
    assert create["action"] == "C" and create["outcome"] == "0"
    assert create["agent"][0]["who"]["identifier"]["value"] == admin_id

    read_ok, unauthenticated = sorted(find(events, "read", f"Patient/{patient_id}"), key=lambda e: e["outcome"])
    assert read_ok["outcome"] == "0" and read_ok["action"] == "R"
    person, client = read_ok["agent"]
    assert person["who"] == {"reference": "Practitioner/chw-1", "display": "rosa"}
    assert person["altId"] == user_id and person["requestor"] is True
    assert person["network"] == {"address": "127.0.0.1", "type": "2"}
    assert client["who"]["identifier"]["value"] == app_id and client["requestor"] is False
    assert read_ok["recorded"].endswith("Z")
    assert read_ok["type"]["code"] == "rest"

    assert unauthenticated["outcome"] == "4"
    assert unauthenticated["agent"][0]["who"]["display"] == "unauthenticated"

    [missing] = find(events, "read", "Patient/somebody-else")
    assert missing["outcome"] == "4" and missing["outcomeDesc"] == "HTTP 404"

    token_events = [e for e in events if e["type"]["code"] == "110114" and e["subtype"][0]["code"] == "token"]
    assert {e["agent"][0]["who"]["identifier"]["value"] for e in token_events} >= {admin_id, app_id}
    logins = [e for e in events if e["subtype"][0]["code"] == "authorize"]
    assert logins and logins[0]["agent"][0]["who"]["display"] == "rosa"


async def test_secrets_in_query_strings_are_not_recorded(http, auth_app, rsa):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    token = await support.access_token(http, admin_id, rsa, "system/*.cruds")
    await http.get(f"/fhir/Patient/_history?_count=1&access_token={token}", headers=bearer(token))
    events = await audit_trail(http, auth_app, bearer(token))
    [history] = find(events, "history-type")
    assert base64.b64decode(history["entity"][0]["query"]).decode() == "_count=1"
    assert not [e for e in events if token in fhir_json.dumps(e).decode()]


async def test_failed_token_requests_are_recorded(http, auth_app, rsa, rsa_other):
    client_id, _ = await register(auth_app, scopes="system/Patient.rs", keys=(rsa,))
    admin_id, _ = await register(auth_app, scopes="system/*.rs", keys=(rsa,), admin=True)
    assert (await support.backend_token(http, client_id, rsa_other, "system/Patient.rs")).status_code == 401
    events = await audit_trail(http, auth_app, bearer(await support.access_token(http, admin_id, rsa, "system/*.rs")))
    failed = [e for e in events if e["subtype"][0]["code"] == "token" and e["outcome"] == "4"]
    assert [e["agent"][0]["who"]["identifier"]["value"] for e in failed] == [client_id]


async def test_nobody_changes_the_audit_trail(http, auth_app, rsa):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    [event] = (await audit_trail(http, auth_app, admin))[:1]
    assert (await http.delete(f"/fhir/AuditEvent/{event['id']}", headers=admin)).status_code == 403
    assert (await http.put(f"/fhir/AuditEvent/{event['id']}", json=event, headers=admin)).status_code == 403


async def test_an_event_that_cannot_be_stored_does_not_hold_up_the_others(auth_app, database_url):
    writer = AuditWriter(lambda: services.of_app(auth_app).engine)
    await writer.start()
    try:
        broken = writer.record({"resourceType": "AuditEvent", "recorded": object()})  # cannot even be serialised
        good = writer.record(audit_event(scope("GET", "/fhir/Patient/p1"), 200, None, time.time()))
        outcomes = await asyncio.gather(broken, good, return_exceptions=True)
    finally:
        await writer.stop()
    # the broken one is refused to its caller (who must not answer the client), the other is stored
    assert isinstance(outcomes[0], AuditNotStored) and outcomes[1] is None
    assert (writer.written, writer.dropped) == (1, 1)


def scope(method: str, path: str, query: bytes = b"") -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query, "client": ("10.0.0.7", 5123),
            "state": {"principal": Principal("u1", client_id="app", scopes=frozenset({"user/*.rs"}),
                                             practitioner="Practitioner/chw-1", role="chw", name="rosa")}}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/fhir/Patient/p1", 200, "read"),
        ("GET", "/fhir/Patient/p1/_history/2", 200, "vread"),
        ("GET", "/fhir/Patient/p1/_history", 200, "history-instance"),
        ("GET", "/fhir/Patient/_history", 200, "history-type"),
        ("GET", "/fhir/_history", 403, "history-system"),
        ("GET", "/fhir/Observation", 200, "search-type"),
        ("POST", "/fhir/Observation/_search", 200, "search-type"),
        ("POST", "/fhir/Observation", 201, "create"),
        ("PUT", "/fhir/Observation/o1", 200, "update"),
        ("PATCH", "/fhir/Observation/o1", 200, "patch"),
        ("DELETE", "/fhir/Observation/o1", 204, "delete"),
        ("POST", "/fhir", 200, "batch"),
        ("POST", "/fhir/Patient/p1/$everything", 500, "operation"),
    ],
)
def test_audit_events_are_valid_r4(method, path, status, code):
    event = audit_event(scope(method, path, b"_count=5"), status, "https://x/fhir/Observation/o9/_history/1",
                        time.time())
    validate_resource(json.loads(json.dumps(event)))
    assert event["subtype"][0]["code"] == code
    assert event["outcome"] == ("0" if status < 400 else "4" if status < 500 else "8")
    assert event["agent"][0]["network"]["address"] == "10.0.0.7"


async def test_refusals_before_any_handler_are_recorded_too(http, auth_app, rsa, database_url):
    """The request guard's refusals (here a body over the limit) are interactions, audited like any."""
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    huge = b'{"resourceType": "Patient", "text": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    refused = await http.post("/fhir/Patient", content=huge, headers={**admin, "Content-Type": "application/fhir+json"})
    assert refused.status_code == 413
    events = find(await audit_trail(http, auth_app, admin), "create")
    assert [e["outcomeDesc"] for e in events] == ["HTTP 413"]
    assert (await http.options("/fhir/Patient", headers=admin)).status_code in (200, 204)
    assert not find(await audit_trail(http, auth_app, admin), "search-type")  # OPTIONS is no interaction
