"""The README's serve command, end to end: migrate, serve with two workers, survive concurrent devices."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from storage.database import create_engine
from tests.fixtures.builders import DNI, patient
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.live_server import running_server, serve


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[str]:
    """One `puente serve --workers 2` per database for the tests below (each empties the tables first)."""
    with running_server(database_url, workers=2) as base:
        yield base


CREATED = 'method="POST",route="/fhir/{resource_type}",status="201"'
FOUND = 'method="POST",route="/fhir/{resource_type}",status="200"'


async def test_two_workers_parallel_conditional_creates(live, database_url):
    await empty_all_tables(database_url)
    async with httpx.AsyncClient(base_url=live, timeout=30) as client:
        ready = await client.get("/readyz")
        assert ready.json()["status"] == "ready"
        metadata = (await client.get("/fhir/metadata")).json()
        assert metadata["fhirVersion"] == "4.0.1"
        before = (await client.get("/metrics")).text
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
            created = _sample(scrape, CREATED) - _sample(before, CREATED)
            found = _sample(scrape, FOUND) - _sample(before, FOUND)
            assert (created, found) == (1, 15), scrape


def _sample(scrape: str, labels: str) -> float:
    line = next((x for x in scrape.splitlines() if x.startswith("puente_http_requests_total{" + labels)), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


# ---- polls, retries and crashes over real sockets, two worker processes ---------------------------

POLL = "/fhir/ServiceRequest?performer=Organization/cs-1&_lastUpdated=gt{}&_count=500"


def _referral(n: int) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/child-1"}, "performer": [{"reference": "Organization/cs-1"}],
            "note": [{"text": f"referral {n}"}]}


async def _poll(client: httpx.AsyncClient, watermark: str, seen: Counter[str]) -> str:
    url: str | None = POLL.format(watermark)
    while url:
        body = (await client.get(url)).json()
        seen.update(e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match")
        watermark = body["meta"]["lastUpdated"]
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
    return watermark


async def test_polls_through_two_workers_miss_nothing_and_repeat_nothing(live, database_url):
    """A 1,000-entry upload and single referrals on two workers while a clinic polls: each referral once."""
    await empty_all_tables(database_url)
    async with httpx.AsyncClient(base_url=live, timeout=120) as writer, \
            httpx.AsyncClient(base_url=live, timeout=120) as single, \
            httpx.AsyncClient(base_url=live, timeout=120) as clinic:
        created: set[str] = set()
        seen: Counter[str] = Counter()
        done = asyncio.Event()
        upload = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _referral(n), "request": {"method": "POST", "url": "ServiceRequest"}} for n in range(1000)
        ]}

        async def big() -> None:
            response = await writer.post("/fhir", json=upload)
            assert response.status_code == 200, response.text
            created.update(e["fullUrl"].rsplit("/", 1)[1] for e in response.json()["entry"])

        async def singles() -> None:
            for n in range(60):
                response = await single.post("/fhir/ServiceRequest", json=_referral(2000 + n))
                assert response.status_code == 201, response.text
                created.add(response.json()["id"])

        async def writers() -> None:
            await asyncio.gather(big(), singles())
            done.set()

        async def polls() -> None:
            watermark = "1970-01-01T00:00:00Z"
            while not done.is_set():
                watermark = await _poll(clinic, watermark, seen)
            for _ in range(2):
                watermark = await _poll(clinic, watermark, seen)

        await asyncio.gather(writers(), polls())
    assert len(created) == 1060
    assert set(seen) == created, f"missed {len(created - set(seen))}"
    assert set(seen.values()) == {1}, "some referral came twice"


async def test_equivalent_criteria_create_one_patient(live, database_url):
    """Parallel retries of one child's registration, its identifier spelt four ways, on two workers."""
    await empty_all_tables(database_url)
    async with httpx.AsyncClient(base_url=live, timeout=60) as client:
        for round_ in range(3):
            dni = f"7070707{round_}"
            spellings = [f"identifier={DNI}|{dni}", f"identifier={DNI}%7C{dni}", f"identifier={dni}",
                         f"gender=female&identifier={DNI}|{dni}"]
            responses = await asyncio.gather(*[
                client.post("/fhir/Patient", json=patient(dni), headers={"If-None-Exist": spellings[i % 4]})
                for i in range(48)
            ])
            statuses = [r.status_code for r in responses]
            assert statuses.count(201) == 1 and statuses.count(200) == 47, statuses
            assert len({r.json()["id"] for r in responses}) == 1
            again = await client.post("/fhir/Patient", json=patient(dni), headers={"If-None-Exist": spellings[2]})
            assert again.status_code == 200  # a later retry finds it: never "matched 2"


def _admin_client_from_the_cli(database_url: str, data_dir: Path) -> dict:
    """As the README registers clients: `puente migrate`, then `puente clients add`."""
    puente = str(Path(sys.executable).parent / "puente")
    env = {**os.environ, "PUENTE_DATABASE_URL": database_url, "PUENTE_DATA_DIR": str(data_dir)}
    subprocess.run([puente, "migrate"], env=env, check=True, capture_output=True)
    registered = subprocess.run(
        [puente, "clients", "add", "--name", "kill test", "--scopes", "system/*.cruds", "--secret", "--admin"],
        env=env, check=True, capture_output=True, text=True)
    client: dict = json.loads(registered.stdout)
    return client


async def test_every_acknowledged_interaction_keeps_its_audit_event_after_kill_9(database_url, tmp_path):
    """Creates and reads race a kill -9: each one answered has its AuditEvent; none answered is lost."""
    await empty_all_tables(database_url)
    client = _admin_client_from_the_cli(database_url, tmp_path)
    acknowledged: list[tuple[str, str]] = []  # (interaction, Patient/id)
    extra = {"PUENTE_AUTH": "on", "PUENTE_DATA_DIR": str(tmp_path), "AUTHLIB_INSECURE_TRANSPORT": "1"}
    with serve(database_url, workers=2, extra_env=extra) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            grant = {"grant_type": "client_credentials", "scope": "system/*.cruds"}
            issued = await http.post("/auth/token", data=grant, auth=(client["client_id"], client["client_secret"]))
            token = issued.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            async def device(n: int) -> None:
                for i in range(10_000):
                    try:
                        created = await http.post("/fhir/Patient", json=patient(f"{n:02d}{i:06d}"), headers=headers)
                        if created.status_code != 201:
                            return
                        reference = f"Patient/{created.json()['id']}"
                        acknowledged.append(("create", reference))
                        read = await http.get(f"/fhir/{reference}", headers=headers)
                        if read.status_code != 200:
                            return
                        acknowledged.append(("read", reference))
                    except httpx.HTTPError:
                        return  # the server is gone

            devices = [asyncio.create_task(device(n)) for n in range(8)]
            await asyncio.sleep(3)
            server.crash()
            await asyncio.gather(*devices)
    assert len(acknowledged) > 20, "the load did not get going"
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT content FROM resources WHERE resource_type = 'AuditEvent' AND deleted = false"))
            audited = set()
            for (content,) in rows:
                event = json.loads(content)
                code = event.get("subtype", [{}])[0].get("code")
                for entity in event.get("entity", []):
                    if "what" in entity:
                        audited.add((code, entity["what"]["reference"]))
            stored = set((await connection.execute(text(
                "SELECT 'Patient/' || id FROM resources WHERE resource_type = 'Patient'"))).scalars())
    finally:
        await engine.dispose()
    missing = [a for a in acknowledged if a not in audited]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged interactions have no AuditEvent"
    assert {r for kind, r in acknowledged if kind == "create"} <= stored  # nothing acknowledged was lost
