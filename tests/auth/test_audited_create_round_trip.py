"""An audited create over HTTP (PUENTE_AUTH=on), with real tokens: on PostgreSQL a create nobody
is to hear of and its AuditEvent are one statement, committed alone (no BEGIN, no COMMIT); a CHW's
reference checks read before it, outside any transaction. Either way (and on SQLite, where the
transaction stores both) the create has exactly one AuditEvent, stamped with it, and a refused
create stores nothing but the record of its refusal.

Statements are counted on every connection the app checks out of its pool (tests.fixtures.statements)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from joserfc.jwk import RSAKey

from api import services
from api.app import create_app
from tests.auth import support
from tests.auth.conftest import empty_auth_tables
from tests.auth.support import REDIRECT, add_user, bearer, register, user_tokens
from tests.auth.test_audit import find
from tests.conftest import make_settings
from tests.exchange.test_matching_cost import subscription
from tests.fixtures.builders import measurement
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.statements import sent_by_connection


@dataclass
class Audited:
    http: httpx.AsyncClient
    app: FastAPI
    seen: list[tuple[int, str]]
    admin: dict[str, str]
    chw: dict[str, str]


@pytest_asyncio.fixture(loop_scope="session")
async def audited(database_url: str, rsa: RSAKey) -> AsyncIterator[Audited]:
    """A fresh auth-on app, an administrator's backend token, a CHW signed in through the login page
    (Practitioner/chw-1, whose patient `kid` is), and what each connection sent, in order."""
    await empty_all_tables(database_url)
    await empty_auth_tables(database_url)
    application = create_app(make_settings(database_url, auth="on", base_url=support.BASE))
    async with application.router.lifespan_context(application):
        engine = services.of_app(application).engine
        async with sent_by_connection(engine) as seen, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url=support.BASE) as http:
            admin_id, _ = await register(application, scopes="system/*.cruds", keys=(rsa,), admin=True)
            admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
            app_id, _ = await register(application, scopes="user/*.cruds", public=True, redirect_uris=(REDIRECT,))
            await add_user(application, "rosa", "Practitioner/chw-1")
            chw = bearer((await user_tokens(http, app_id, "rosa", scope="user/*.cruds"))["access_token"])
            for patient in ({"resourceType": "Patient", "id": "kid", "generalPractitioner": [
                                {"reference": "Practitioner/chw-1"}]},
                            {"resourceType": "Patient", "id": "not-hers"}):
                put = await http.put(f"/fhir/Patient/{patient['id']}", json=patient, headers=admin)
                assert put.status_code == 201, put.text
            yield Audited(http, application, seen, admin, chw)


def _creating(seen: list[tuple[int, str]]) -> list[str]:
    """What the connection that stored the create sent (the app's background workers and the
    token checks use others), but the SET that makes a connection's session plan generically the
    first time one of its statements commits alone (storage.pg_connection)."""
    creating = {key for key, query in seen if query.startswith("WITH lease")}
    assert len(creating) == 1, seen
    return [query for key, query in seen if key in creating and query != "SET plan_cache_mode = auto"]


async def _post(audited: Audited, headers: dict[str, str], n: int, patient: str = "kid") -> httpx.Response:
    body = measurement(patient, "8867-4", 120 + n, "/min", f"2026-12-07T10:{n:02d}:00Z")
    audited.seen.clear()
    return await audited.http.post("/fhir/Observation", json=body, headers=headers)


async def _trail(audited: Audited) -> list[dict[str, Any]]:
    await services.of_app(audited.app).audit.flush()
    r = await audited.http.get("/fhir/AuditEvent/_history?_count=500", headers=audited.admin)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def _recorded_once(audited: Audited, created: httpx.Response, *, alone: bool) -> dict[str, Any]:
    """The create's one AuditEvent, which a read by id finds, stamped with the create when one
    statement stored both (`alone`), after it otherwise."""
    observation = created.json()
    [record] = find(await _trail(audited), "create", f"Observation/{observation['id']}")
    assert record["action"] == "C" and record["outcome"] == "0" and record["outcomeDesc"] == "HTTP 201"
    read = await audited.http.get(f"/fhir/AuditEvent/{record['id']}", headers=audited.admin)
    assert read.status_code == 200 and read.json() == record
    stamps = record["meta"]["lastUpdated"], observation["meta"]["lastUpdated"]
    assert stamps[0] == stamps[1] if alone else stamps[0] >= stamps[1]
    return record


async def test_an_administrators_create_and_its_record_are_one_statement(audited, backend):
    for n in range(3):
        created = await _post(audited, audited.admin, n)
        assert created.status_code == 201, created.text
        if backend == "postgres":
            [statement] = _creating(audited.seen)
            assert "quiet AS MATERIALIZED" in statement and "c AS (INSERT" in statement
        record = await _recorded_once(audited, created, alone=backend == "postgres")
        assert record["agent"][0]["who"]["identifier"]["value"]
        stored = await audited.http.get(f"/fhir/Observation/{created.json()['id']}", headers=audited.admin)
        assert stored.status_code == 200 and stored.json() == created.json()


async def test_a_chws_create_checks_its_references_before_its_one_statement(audited, backend):
    created = await _post(audited, audited.chw, 1)
    assert created.status_code == 201, created.text
    if backend == "postgres":
        sent = _creating(audited.seen)
        assert not [q for q in sent if q.startswith(("BEGIN", "COMMIT", "ROLLBACK"))], sent
        assert sent[-1].startswith("WITH lease") and "c AS (INSERT" in sent[-1]
        assert all(q.lstrip().upper().startswith("SELECT") for q in sent[:-1]), sent
        assert len(sent) >= 2  # the subject's visibility, read by itself
    record = await _recorded_once(audited, created, alone=backend == "postgres")
    person = record["agent"][0]
    assert person["who"]["reference"] == "Practitioner/chw-1" and person["requestor"] is True
    assert (await audited.http.get(f"/fhir/Observation/{created.json()['id']}", headers=audited.chw)).status_code == 200


async def test_a_chws_create_about_a_patient_she_may_not_see_stores_only_its_refusal(audited, backend):
    before = await _trail(audited)
    refused = await _post(audited, audited.chw, 2, patient="not-hers")
    assert refused.status_code == 404, refused.text
    assert refused.json()["resourceType"] == "OperationOutcome"
    assert "Patient/not-hers" in refused.json()["issue"][0]["diagnostics"]
    listed = await audited.http.get("/fhir/Observation?subject=Patient/not-hers", headers=audited.admin)
    assert listed.status_code == 200 and listed.json().get("total", 0) == 0 and not listed.json().get("entry")
    after = await _trail(audited)
    [refusal] = [e for e in after if e["id"] not in {b["id"] for b in before} and e["subtype"][0]["code"] == "create"]
    assert refusal["outcome"] == "4" and refusal["outcomeDesc"] == "HTTP 404"
    # and the next create of hers still commits alone, with its record
    created = await _post(audited, audited.chw, 3)
    assert created.status_code == 201, created.text
    await _recorded_once(audited, created, alone=backend == "postgres")


async def test_a_watched_audited_create_stores_its_record_in_its_transaction(audited, backend):
    watcher = await audited.http.post("/fhir/Subscription", json=subscription("Observation?code=8867-4"),
                                      headers=audited.admin)
    assert watcher.status_code == 201, watcher.text
    created = await _post(audited, audited.admin, 4)
    assert created.status_code == 201, created.text
    if backend == "postgres":
        sent = [q for q in _creating(audited.seen) if q.startswith(("BEGIN", "COMMIT", "WITH"))]
        # the quiet statement stored nothing (a live subscription); the transaction then stores
        # the create, its notification and its AuditEvent
        assert [q.split()[0].rstrip(";") for q in sent][:3] == ["WITH", "BEGIN", "WITH"], sent
        assert sent[-1].startswith("COMMIT"), sent
    await _recorded_once(audited, created, alone=False)
