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


def _weight(oid: str) -> dict:
    return {**_observation(oid), "effectiveDateTime": "2026-12-07T10:00:00Z"}


LONG = "w" * 61  # `{LONG}-wfa` passes FHIR's 64 characters: its z-score's id would be a digest


async def test_what_the_latest_read_locks_ahead_is_there_for_read_ahead(engine, repository_in, backend,
                                                                       database_url):
    """greatest_by_token with lock_ahead (the rules' latest measurements of the day) reads and locks,
    on PostgreSQL in its own statement, what the read_ahead after it asks for: the keys given and
    the ids named after what it found; that read_ahead then sends nothing, unless an id was too long
    to be named so. What every read answers is what plain reads answer."""
    async with repository_in(write=True) as repository:
        await repository.update("Patient", "kid", {"resourceType": "Patient", "id": "kid"})
        await repository.update("Flag", "kid-sam", {"resourceType": "Flag", "id": "kid-sam", "status": "active",
                                                    "code": {"text": "SAM"}, "subject": {"reference": "Patient/kid"}})
        for oid in ("w1", "w2", LONG, "w1-wfa"):
            await repository.update("Observation", oid, _weight(oid))
    ahead = [("Flag", "kid-sam"), ("Flag", "kid-severe-stunting")]
    named = [("Observation", f"{oid}-{suffix}") for oid in ("w1", "w2", "w1-wfa") for suffix in ("bfa", "wfa")]
    async with repository_in(write=False) as repository:
        plain = await repository.greatest_by_token("Observation", "code", ["29463-7"], per_key=10)
        await repository.read_ahead([*ahead, *named])
        expected = {key: await repository.read_many(key[0], [key[1]]) for key in [*ahead, *named]}
    async with repository_in(write=True) as repository:
        found = await repository.greatest_by_token("Observation", "code", ["29463-7"], per_key=10,
                                                   lock_ahead=ahead, lock_suffixed=["wfa", "bfa"])
        assert found == plain and sorted(v.id for v in found) == sorted(["w1", "w2", LONG, "w1-wfa"])
        async with statements_sent(engine, repository) as seen:
            await repository.read_ahead([*ahead, *named], lock=True)
        if backend == "postgres":
            assert seen == [], seen  # locked by the read before
        assert {key: await repository.read_many(key[0], [key[1]]) for key in [*ahead, *named]} == expected
        async with statements_sent(engine, repository) as seen:
            await repository.read_ahead([("Observation", f"{LONG}-wfa")], lock=True)
        assert len(seen) == 1, seen  # too long to be named in SQL: read by read_ahead itself
        if backend == "postgres":  # another transaction cannot take them
            dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
            other = await asyncpg.connect(dsn)
            try:
                for id_ in ("kid-sam", "w1-wfa"):
                    with pytest.raises(asyncpg.LockNotAvailableError):
                        await other.execute(f"SELECT 1 FROM resources WHERE id = '{id_}' FOR UPDATE NOWAIT")
                # what it found (the weights themselves) it did not lock
                await other.execute("SELECT 1 FROM resources WHERE id = 'w2' FOR UPDATE NOWAIT")
            finally:
                await other.close()
        # and a write of a row it locked needs no locked read
        async with statements_sent(engine, repository) as seen:
            await repository.delete_many("Observation", ["w1-wfa"])
        if backend == "postgres":
            assert not [s for s in seen if "FOR UPDATE" in s], seen
