"""FhirRepository.read_ahead: several types read in one statement into the transaction's reads, and
with lock=True row-locked, so that a later update or deletion of them sends no locked read of its
own. Both databases; statements counted at the driver, the row locks checked from another
connection (PostgreSQL)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.storage.conftest import statements_sent


def _observation(oid: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/kid"}}


async def _seed(repository_in) -> None:
    async with repository_in(write=True) as repository:
        await repository.update("Patient", "kid", {"resourceType": "Patient", "id": "kid"})
        await repository.update("Flag", "kid-sam", {"resourceType": "Flag", "id": "kid-sam", "status": "active",
                                                    "code": {"text": "SAM"}, "subject": {"reference": "Patient/kid"}})
        for oid in ("z1", "z2"):
            await repository.update("Observation", oid, _observation(oid))


KEYS = [("Flag", "kid-sam"), ("Observation", "z1"), ("Observation", "z2"), ("Observation", "none"),
        ("Patient", "kid")]


async def test_several_types_in_one_statement_then_from_memory(engine, repository_in):
    await _seed(repository_in)
    async with repository_in(write=False) as repository, statements_sent(engine, repository) as seen:
        await repository.read_ahead(KEYS)
        flags = await repository.read_many("Flag", ["kid-sam"])
        observations = await repository.read_many("Observation", ["z1", "z2", "none"])
        patient = await repository.read("Patient", "kid")
    assert len(seen) == 1, seen
    assert set(flags) == {"kid-sam"} and set(observations) == {"z1", "z2"} and patient.version_id == 1


async def test_locked_rows_need_no_locked_read_to_be_written(engine, repository_in, backend, database_url):
    await _seed(repository_in)
    async with repository_in(write=True) as repository:
        await repository.read_ahead(KEYS, lock=True)
        if backend == "postgres":  # another transaction cannot take them
            dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
            other = await asyncpg.connect(dsn)
            try:
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await other.execute("SELECT 1 FROM resources WHERE id = 'z1' FOR UPDATE NOWAIT")
            finally:
                await other.close()
        async with statements_sent(engine, repository) as seen:
            deleted = await repository.delete_many("Observation", ["z1", "none"])
            await repository.update("Flag", "kid-sam", {"resourceType": "Flag", "id": "kid-sam",
                                                        "status": "inactive", "code": {"text": "SAM"},
                                                        "subject": {"reference": "Patient/kid"}})
        if backend == "postgres":
            assert not [s for s in seen if "FOR UPDATE" in s], seen
    assert [(v.id, v.version_id) for v in deleted] == [("z1", 2)]
    async with repository_in(write=False) as repository:
        assert (await repository.read_many("Observation", ["z1"]))["z1"].deleted
        assert (await repository.read("Flag", "kid-sam")).version_id == 2


async def test_what_a_rolled_back_savepoint_locked_is_read_again(engine, repository_in, backend):
    await _seed(repository_in)
    async with repository_in(write=True) as repository:
        with pytest.raises(RuntimeError):
            async with repository.savepoint():
                await repository.read_ahead(KEYS, lock=True)
                raise RuntimeError("the entry failed")  # its row locks went with it
        async with statements_sent(engine, repository) as seen:
            await repository.delete_many("Observation", ["z2"])
        if backend == "postgres":
            assert [s for s in seen if "FOR UPDATE" in s], seen
    async with repository_in(write=False) as repository:
        assert (await repository.read_many("Observation", ["z2"]))["z2"].deleted
