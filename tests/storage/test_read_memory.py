"""What a repository remembers of its reads within one transaction, and when it must forget.

The clinical rules read a visit's Patient twice (the hemoglobin's interpretation, then the growth
day); the second read costs no statement. Every write, every locked read and every rolled-back
savepoint makes the repository read again, so nothing stale is ever returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import PreconditionFailed
from storage.repository import FhirRepository
from storage.versions import StoredVersion
from tests.storage.conftest import statements_sent


def _patient(pid: str, family: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def _family(version: StoredVersion) -> str:
    assert version.content is not None
    return fhir_json.loads(version.content)["name"][0]["family"]


@asynccontextmanager
async def _reads_of_resources(engine: AsyncEngine, repository: FhirRepository) -> AsyncIterator[list[str]]:
    """The SELECTs on the resources table sent while the block runs."""
    async with statements_sent(engine, repository) as sent:
        reads: list[str] = []
        yield reads
    reads.extend(s for s in sent if s.lstrip().upper().startswith("SELECT") and "FROM resources" in s)


async def _store(repository_in, *patients: dict) -> None:
    async with repository_in(write=True) as repository:
        await repository.create_many([(p, p["id"]) for p in patients])


async def test_a_resource_is_read_once_per_transaction_until_it_is_written(repository_in, engine):
    await _store(repository_in, _patient("ana", "Quispe"), _patient("rosa", "Mamani"))
    async with repository_in(write=True) as repository:
        async with _reads_of_resources(engine, repository) as reads:
            assert _family(await repository.read("Patient", "ana")) == "Quispe"
            assert set(await repository.read_many("Patient", ["ana", "rosa", "nobody"])) == {"ana", "rosa"}
            assert _family(await repository.read("Patient", "ana")) == "Quispe"
            assert set(await repository.read_many("Patient", ["rosa", "nobody"])) == {"rosa"}
        assert len(reads) == 2  # ana; then rosa and nobody (remembered as missing)
        await repository.update("Patient", "ana", _patient("ana", "Huaman"))
        again = await repository.read("Patient", "ana")
        assert (again.version_id, _family(again)) == (2, "Huaman")
        await repository.delete("Patient", "rosa")
        assert (await repository.read_many("Patient", ["rosa"]))["rosa"].deleted


async def test_a_rolled_back_savepoint_forgets_what_was_read_inside_it(repository_in):
    await _store(repository_in, _patient("ana", "Quispe"))
    async with repository_in(write=True) as repository:
        with pytest.raises(PreconditionFailed):
            async with repository.savepoint():
                await repository.update("Patient", "ana", _patient("ana", "Huaman"))
                assert (await repository.read("Patient", "ana")).version_id == 2
                await repository.update("Patient", "ana", _patient("ana", "Ccori"), if_match=1)  # a batch entry fails
        after = await repository.read("Patient", "ana")
        assert (after.version_id, _family(after)) == (1, "Quispe")


async def test_an_update_sees_a_version_committed_since_the_read_and_a_retry_reads_it(repository_in, backend):
    """Two devices: the first read ana, the second committed a new version meanwhile (PostgreSQL;
    SQLite runs one writer at a time, so there is no meanwhile)."""
    await _store(repository_in, _patient("ana", "Quispe"))
    if backend != "postgres":
        return
    async with repository_in(write=True) as first:
        seen = await first.read("Patient", "ana")

        async def second_device() -> None:
            async with repository_in(write=True) as second:
                await second.update("Patient", "ana", _patient("ana", "Huaman"), if_match=1)

        await asyncio.wait_for(second_device(), 10)
        with pytest.raises(PreconditionFailed):
            await first.update("Patient", "ana", _patient("ana", "Ccori"), if_match=seen.version_id)
        retried = await first.read("Patient", "ana")
        assert (retried.version_id, _family(retried)) == (2, "Huaman")
        await first.update("Patient", "ana", _patient("ana", "Ccori"), if_match=retried.version_id)
    async with repository_in(write=False) as reader:
        final = await reader.read("Patient", "ana")
        assert (final.version_id, _family(final)) == (3, "Ccori")


async def test_create_unless_taken_creates_the_free_ids_and_leaves_the_taken(repository_in):
    await _store(repository_in, _patient("taken", "Quispe"))
    async with repository_in(write=True) as repository:
        results = await repository.create_unless_taken(
            [(_patient("free", "Mamani"), "free"), (_patient("taken", "Huaman"), "taken")]
        )
        assert results[0] is not None and results[0].created and results[1] is None
    async with repository_in(write=False) as repository:
        assert _family(await repository.read("Patient", "free")) == "Mamani"
        kept = await repository.read("Patient", "taken")
        assert (kept.version_id, _family(kept)) == (1, "Quispe")
        assert {rid for _, rid in await repository.search_matches("Patient", [("family", "huaman")])} == set()
