"""The README's serve command, end to end: migrate, serve with two workers, survive concurrent devices."""

from __future__ import annotations

import asyncio

import httpx

from tests.fixtures.builders import DNI, patient
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.live_server import running_server


async def test_two_workers_parallel_conditional_creates(database_url):
    await empty_all_tables(database_url)
    with running_server(database_url, workers=2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            ready = await client.get("/readyz")
            assert ready.json()["status"] == "ready"
            metadata = (await client.get("/fhir/metadata")).json()
            assert metadata["fhirVersion"] == "4.0.1"
            headers = {"If-None-Exist": f"identifier={DNI}|31313131"}
            responses = await asyncio.gather(
                *[client.post("/fhir/Patient", json=patient("31313131"), headers=headers) for _ in range(16)]
            )
            statuses = [r.status_code for r in responses]
            assert statuses.count(201) == 1, statuses
            assert len({r.json()["id"] for r in responses}) == 1
            history = (await client.get("/fhir/Patient/_history")).json()
            assert history["total"] == 1
