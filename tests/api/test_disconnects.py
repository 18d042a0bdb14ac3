"""What the real app does when a client goes away mid-request (issue 20): a read stops (on SQLite its
statement is interrupted in aiosqlite's thread and its connection returns to the pool, healthy),
and a write finishes and commits all the same."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from api import services
from fhir_mappings import fhir_json
from storage import kept_connections, version_writes
from storage.database import transaction
from tests.fixtures.asgi_calls import call
from tests.fixtures.waiting import until

PATIENTS = 20_000
FHIR_JSON = [(b"host", b"testserver"), (b"content-type", b"application/fhir+json")]
# 200 values (PUENTE_MAX_SEARCH_VALUES): each name row is matched against every one, seconds of work.
SLOW_SEARCH = "/fhir/Patient?name:contains=" + ",".join(f"zq{n:03d}" for n in range(200))


async def _many_patients(app: FastAPI) -> None:
    """PATIENTS Patients with three names each, stored through the write path in one transaction."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    items: list[tuple[Any, dict[str, Any]]] = []
    for n in range(PATIENTS):
        resource = {"resourceType": "Patient", "name": [
            {"family": f"Quispe{n}", "given": [f"Maria{n}", f"Rosa{n}"]}, {"text": f"Maria Quispe {n}"}]}
        version = version_writes.new_version(resource, f"p{n}", 1, stamp + timedelta(milliseconds=n), method="PUT")
        items.append((version, resource))
    async with transaction(services.of_app(app).engine, write=True) as connection:
        await version_writes.insert_new(connection, items, version_writes.SERVER)


async def test_a_sqlite_read_stops_when_its_client_disconnects(app: FastAPI, client: httpx.AsyncClient, backend):
    if backend != "sqlite":
        return  # PostgreSQL's reads are cancelled: tests/api/test_request_guard.py, tests/storage/test_time_budget.py
    await _many_patients(app)
    engine = services.of_app(app).engine
    started = time.monotonic()
    answered = await client.get(SLOW_SEARCH, timeout=120)
    whole = time.monotonic() - started
    assert answered.status_code == 200 and not answered.json().get("entry")

    started = time.monotonic()
    sent = await call(app, "GET", SLOW_SEARCH, disconnect_after=whole / 10)
    stopped = time.monotonic() - started
    assert sent == []  # nobody to answer
    # It stopped when its client left, not when its statement ran out: a tenth of the whole read
    # went by before the disconnect; allow for a loaded machine up to half.
    assert stopped < whole / 2, (stopped, whole)
    # Its connection went back (to the pool, or idle on the shelf), neither stopped nor busy: the next
    # reads use it at once. The session app's own workers (exports, the exchange) check connections
    # out for moments of their own (one or two at a time: 1 run in ~10 failed on that), so what is
    # counted is a state reached within seconds; a connection the stopped read kept would never be.
    async def all_back() -> bool:
        return engine.pool.checkedout() == kept_connections.idle(engine)  # type: ignore[attr-defined, no-any-return]

    await until(all_back, seconds=5.0)
    for _ in range(engine.pool.size() + 1):  # type: ignore[attr-defined]
        response = await client.get("/fhir/Patient/p7")
        assert response.status_code == 200 and response.json()["name"][0]["family"] == "Quispe7"


async def test_a_write_whose_client_disconnects_still_commits(app: FastAPI, client: httpx.AsyncClient):
    body = fhir_json.dumps({"resourceType": "Patient", "id": "ana", "name": [{"family": "Mamani"}]})
    sent = await call(app, "PUT", "/fhir/Patient/ana", body, disconnect_after=0, headers=FHIR_JSON)
    assert sent[0]["status"] == 201  # answered, though nobody was left to read it
    response = await client.get("/fhir/Patient/ana")
    assert response.status_code == 200 and response.json()["name"][0]["family"] == "Mamani"
    created = await call(app, "POST", "/fhir/Observation", fhir_json.dumps(
        {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
         "subject": {"reference": "Patient/ana"}, "valueQuantity": {"value": 9.8, "unit": "kg"}}),
        disconnect_after=0, headers=FHIR_JSON)
    assert created[0]["status"] == 201
    found = await client.get("/fhir/Observation?subject=Patient/ana")
    assert [e["resource"]["valueQuantity"]["value"] for e in found.json()["entry"]] == [9.8]
