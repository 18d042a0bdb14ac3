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
            # Whichever worker answers the scrape, it counts the requests of both.
            for _ in range(4):
                scrape = (await client.get("/metrics")).text
                created = _sample(scrape, 'method="POST",route="/fhir/{resource_type}",status="201"')
                found = _sample(scrape, 'method="POST",route="/fhir/{resource_type}",status="200"')
                assert (created, found) == (1, 15), scrape


def _sample(scrape: str, labels: str) -> float:
    line = next((x for x in scrape.splitlines() if x.startswith("puente_http_requests_total{" + labels)), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0
