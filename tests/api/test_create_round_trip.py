"""The create interaction over HTTP: on PostgreSQL a create nobody is to hear of is one statement,
its insert, committed alone (no BEGIN, no COMMIT); one that a live subscription watches takes the
transaction's path and is notified. Statements counted at the driver on every connection the app
checks out of its pool (tests.fixtures.statements)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from api import services
from api.app import create_app
from exchange import tables
from tests.conftest import BASE, make_settings
from tests.exchange.test_matching_cost import subscription
from tests.fixtures.builders import measurement
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.statements import sent_by_connection


@pytest_asyncio.fixture(loop_scope="session")
async def counted(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[tuple[int, str]], FastAPI]]:
    """A client of a fresh app, and what each connection (by its id) sent, in order."""
    await empty_all_tables(database_url)
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        engine = services.of_app(application).engine
        async with sent_by_connection(engine) as seen:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=BASE,
                                         headers={"Accept": "application/fhir+json"}) as client:
                yield client, seen, application


def _writes(seen: list[tuple[int, str]]) -> list[str]:
    """The transaction control and inserts of the connection that stored the create (the app's
    background workers poll on others)."""
    creating = {key for key, query in seen if query.startswith("WITH lease")}
    return [query for key, query in seen
            if key in creating and query.startswith(("BEGIN", "COMMIT", "ROLLBACK", "WITH lease"))]


async def _post(client: httpx.AsyncClient, n: int) -> str:
    body = measurement("kid", "8867-4", 120 + n, "/min", f"2026-12-07T10:{n:02d}:00Z")
    answer = await client.post("/fhir/Observation", json=body)
    assert answer.status_code == 201, answer.text
    stored = await client.get(f"/fhir/Observation/{answer.json()['id']}")
    assert stored.status_code == 200 and stored.json() == answer.json()
    return str(answer.json()["id"])


async def test_a_create_nobody_hears_of_is_its_insert_alone(counted, backend):
    client, seen, _ = counted
    for n in range(3):
        seen.clear()
        await _post(client, n)
        if backend == "postgres":
            writes = _writes(seen)
            assert len(writes) == 1 and "quiet AS MATERIALIZED" in writes[0], writes


async def test_a_watched_create_is_notified_through_its_transaction(counted, backend, database_url):
    client, seen, application = counted
    watcher = await client.post("/fhir/Subscription", json=subscription("Observation?code=8867-4"))
    assert watcher.status_code == 201, watcher.text
    seen.clear()
    created = await _post(client, 7)
    if backend == "postgres":
        writes = _writes(seen)
        assert [w.split()[0].rstrip(";") for w in writes][:3] == ["WITH", "BEGIN", "WITH"], writes
    o = tables.outbox
    async with services.of_app(application).engine.connect() as connection:
        told = (await connection.execute(select(o.c.subscription_id).where(
            o.c.kind == "notification", o.c.resource_id == created))).scalars().all()
    assert told == [watcher.json()["id"]]
