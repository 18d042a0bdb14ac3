"""`puente reindex` rebuilds the index rows from the stored resources (after a definitions change)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from cli.main import app as cli
from storage.cli import public_base_url, rebuild
from storage.database import create_engine, transaction
from storage.tables import SEARCH_TABLES, deleted_reference, search_reference, search_token
from tests.conftest import BASE
from tests.fixtures.builders import DNI, patient
from tests.search.conftest import found_ids


async def _index_rows(engine) -> int:
    async with transaction(engine, write=False) as connection:
        total = 0
        for table in SEARCH_TABLES.values():
            total += (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        return total


async def test_rebuild_restores_every_index_row(client, database_url):
    child = (await client.post("/fhir/Patient", json=patient("10203040"))).json()["id"]
    await client.post("/fhir/Patient", json=patient("50607080"))
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"{BASE}/fhir/Patient/{child}"},
    }  # absolute, on our base
    await client.post("/fhir/Observation", json=obs)
    gone = (await client.post("/fhir/Patient", json=patient("99999999"))).json()["id"]
    await client.delete(f"/fhir/Patient/{gone}")
    engine = create_engine(database_url)
    try:
        before = await _index_rows(engine)
        async with transaction(engine, write=True) as connection:
            for table in SEARCH_TABLES.values():
                await connection.execute(delete(table))
        assert await found_ids(client, f"Patient?identifier={DNI}|10203040") == set()
        seen: list[tuple[int, int]] = []
        count = await rebuild(
            engine, base_url=f"{BASE}/fhir", batch_size=2, progress=lambda done, total: seen.append((done, total))
        )
        assert count == 3 and seen[0] == (0, 3) and seen[-1] == (3, 3)
        assert await _index_rows(engine) == before
        assert await found_ids(client, f"Patient?identifier={DNI}|10203040") == {child}
        assert await found_ids(client, f"Observation?subject=Patient/{child}")  # the absolute reference is local
        # one type only
        async with transaction(engine, write=True) as connection:
            await connection.execute(delete(search_token))
            await connection.execute(delete(search_reference))
        assert await rebuild(engine, base_url=None, resource_types=["Observation"]) == 1
        assert await found_ids(client, f"Patient?identifier={DNI}|10203040") == set()
    finally:
        await engine.dispose()


async def test_rebuild_recomputes_what_deleted_resources_keep_for_access(client, database_url):
    child = (await client.post("/fhir/Patient", json=patient("11223344"))).json()["id"]
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "subject": {"reference": f"{BASE}/fhir/Patient/{child}"}}  # absolute, on our base
    first = (await client.post("/fhir/Observation", json=obs)).json()["id"]
    await client.put(f"/fhir/Observation/{first}", json={**obs, "id": first, "status": "amended"})
    assert (await client.delete(f"/fhir/Observation/{first}")).status_code in (200, 204)
    engine = create_engine(database_url)
    try:
        kept = select(deleted_reference.c.param, deleted_reference.c.target_type, deleted_reference.c.target_id)
        async with transaction(engine, write=True) as connection:
            before = set((await connection.execute(kept)).all())
            await connection.execute(delete(deleted_reference))
        assert ("subject", "Patient", child) in before
        await rebuild(engine, base_url=f"{BASE}/fhir")
        async with transaction(engine, write=False) as connection:
            assert set((await connection.execute(kept)).all()) == before
        assert (await client.get(f"/fhir/Observation/{first}")).status_code == 410
        assert await found_ids(client, f"Observation?subject=Patient/{child}") == set()  # still deleted
    finally:
        await engine.dispose()


def test_reindex_command(database_url):
    result = CliRunner().invoke(cli, ["reindex", "--database-url", database_url, "--batch-size", "10"])
    assert result.exit_code == 0, result.output
    assert "reindexed" in result.output


def test_base_url_as_the_settings_make_it(monkeypatch):
    assert public_base_url("https://puente.example.org/") == "https://puente.example.org/fhir"
    assert public_base_url("https://puente.example.org/fhir") == "https://puente.example.org/fhir"
    monkeypatch.setenv("PUENTE_PORT", "9000")
    assert public_base_url(None) == "http://127.0.0.1:9000/fhir"
