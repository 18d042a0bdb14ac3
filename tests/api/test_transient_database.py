"""Transient database conditions (issue 16) answer 503 with Retry-After, not 500, and the server
serves again as soon as they pass."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api import services
from api.app import create_app
from storage import kept_connections
from storage.database import transaction
from tests.api.test_errors import assert_outcome
from tests.conftest import BASE, make_settings
from tests.fixtures.builders import patient
from tests.fixtures.databases import empty_all_tables

FHIR = {"Content-Type": "application/fhir+json"}


@asynccontextmanager
async def serving(database_url: str, **overrides: object) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(database_url, **overrides))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield app, client


def assert_transient(response: httpx.Response) -> None:
    assert_outcome(response, 503)
    assert response.json()["issue"][0]["code"] == "transient"
    assert int(response.headers["retry-after"]) >= 1


async def test_no_free_pooled_connection(database_url):
    await empty_all_tables(database_url)
    async with serving(database_url, db_pool_size=1, db_pool_timeout=0.5) as (app, client):
        engine = services.of_app(app).engine
        size = engine.pool.size() + max(engine.pool._max_overflow, 0)
        # Every connection this worker may open, taken: the transactions' (storage.kept_connections,
        # if the pool is big enough to have a shelf), and the rest of the pool.
        shelf = kept_connections.shelf_of(engine)
        places = shelf.places if shelf is not None else 0
        async with AsyncExitStack() as transactions:
            for _ in range(places):
                await transactions.enter_async_context(transaction(engine, write=False))
            held = [await engine.connect() for _ in range(size - places)]
            started = time.monotonic()
            assert_transient(await client.get("/fhir/Patient"))
            assert_transient(await client.post("/fhir/Patient", json=patient(), headers=FHIR))
            assert time.monotonic() - started < 10
            for connection in held:
                await connection.close()
        assert (await client.post("/fhir/Patient", json=patient(), headers=FHIR)).status_code == 201


async def test_too_many_connections(database_url, backend):
    if backend != "postgres":
        return  # SQLite has no connection limit: a file, opened in-process
    role = f"puente_limited_{uuid.uuid4().hex[:8]}"
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        limited = make_url(database_url).set(username=role).render_as_string(hide_password=False)
        async with serving(limited) as (app, client):
            held = await services.of_app(app).engine.connect()  # the role's one connection: the next must be refused
            assert_transient(await client.get("/fhir/Patient"))
            response = await client.post("/fhir/Patient", json=patient(), headers=FHIR)
            assert_transient(response)
            assert "too many connections" in response.text
            assert (await client.get("/healthz")).status_code == 200
            await held.close()
            assert (await client.get("/fhir/Patient")).status_code == 200
    finally:
        await admin.execute(f"DROP OWNED BY {role}")  # its privileges on this database
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
