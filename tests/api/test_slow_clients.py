"""Slow and stalled clients (issue 16): a body is read in full, within a time limit, before any
transaction or pooled connection is taken, so stalled uploads cannot block other writers (the SQLite
write lock) or exhaust PostgreSQL's pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from tests.api.test_errors import assert_outcome, count
from tests.conftest import BASE, make_settings
from tests.fixtures.builders import patient
from tests.fixtures.databases import empty_all_tables

FHIR = {"Content-Type": "application/fhir+json"}
IDLE = 1.0


@pytest_asyncio.fixture(loop_scope="session")
async def impatient(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await empty_all_tables(database_url)
    app: FastAPI = create_app(make_settings(database_url, body_idle_timeout=IDLE, body_timeout=3 * IDLE))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            yield client


async def stalled_after(prefix: bytes, forever: asyncio.Event) -> AsyncIterator[bytes]:
    yield prefix
    await forever.wait()  # never set: the client stalls mid-body


async def trickling(pieces: int) -> AsyncIterator[bytes]:
    body = b'{"resourceType":"Patient","gender":"female"}' + b" " * 64
    step = len(body) // pieces + 1
    for i in range(0, len(body), step):
        yield body[i : i + step]
        await asyncio.sleep(IDLE * 0.8)  # each piece within the idle limit, the whole beyond the total


async def test_stalled_uploads_block_nobody_and_answer_408(impatient):
    forever = asyncio.Event()
    stalled = [
        asyncio.create_task(impatient.post("/fhir/Patient", content=stalled_after(b'{"resourceType":"Pat', forever),
                                           headers=FHIR))
        for _ in range(25)  # more than the PostgreSQL pool (10 + 10 overflow)
    ]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    written = await asyncio.gather(*[impatient.post("/fhir/Patient", json=patient(), headers=FHIR) for _ in range(10)])
    assert [r.status_code for r in written] == [201] * 10
    assert (await impatient.get("/fhir/Patient")).status_code == 200
    assert time.monotonic() - started < IDLE * 5  # they did not wait for the stalled uploads
    for response in await asyncio.gather(*stalled):
        assert_outcome(response, 408)
        assert "PUENTE_BODY_IDLE_TIMEOUT" in response.text
    assert await count(impatient, "Patient") == 10
    assert (await impatient.get("/healthz")).status_code == 200


async def test_a_body_trickling_in_past_the_total_limit(impatient):
    started = time.monotonic()
    response = await impatient.post("/fhir/Patient", content=trickling(8), headers=FHIR)
    assert_outcome(response, 408)
    assert "PUENTE_BODY_TIMEOUT" in response.text
    assert time.monotonic() - started < IDLE * 6
    assert await count(impatient, "Patient") == 0


async def test_a_slow_body_within_the_limits_is_stored(impatient):
    response = await impatient.post("/fhir/Patient", content=trickling(2), headers=FHIR)
    assert response.status_code == 201, response.text
