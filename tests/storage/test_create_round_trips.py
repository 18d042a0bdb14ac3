"""A single create on PostgreSQL: its lease, its stamp and its insert in one statement.

Counted at the driver (storage/conftest.statements_sent sees what goes through SQLAlchemy and what
goes to asyncpg directly, BEGIN included): the transaction's statements are BEGIN and the insert,
which also takes the write lease (storage.clock) and stamps the resource; a hemoglobin adds the
Patient its interpretation reads, and nothing after the insert unless the rules have something to
record. On both databases the version answered is the version stored, stamped on the millisecond.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from auth.principal import LOCAL_EXPLORER
from fhir_mappings import fhir_json
from rules import ClinicalConfig
from rules import subscribers as clinical_subscribers
from rules.derived import flag_evidence
from storage import clock
from storage.database import transaction
from storage.repository import FhirRepository
from storage.versions import fhir_instant
from tests.conftest import make_settings
from tests.fixtures.builders import measurement
from tests.storage.conftest import statements_sent
from wiring import write_subscribers


def _hemoglobin(value: float) -> dict[str, object]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": "Patient/kid"}, "effectiveDateTime": "2026-12-05T10:00:00Z",
        "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }


def _ours(seen: list[str]) -> list[str]:
    """Without asyncpg's own type introspection, which it runs once per connection and type."""
    return [s for s in seen if "typeinfo_tree" not in s and "'jit'" not in s]


def _leased_inserts(seen: list[str]) -> int:
    return sum(1 for s in seen if "pg_advisory_xact_lock_shared" in s and "INSERT INTO resources" in s)


async def test_a_single_create_is_one_statement_after_begin(engine, repository_in, backend):
    async with repository_in(write=True) as repository, statements_sent(engine, repository) as seen:
        written = await repository.create({"resourceType": "Patient", "gender": "female",
                                           "meta": {"source": "#chw-7"}})
    seen = _ours(seen)
    if backend == "postgres":
        assert [s.split()[0] for s in seen] == ["BEGIN;", "WITH"], seen
        assert _leased_inserts(seen) == 1, seen
    version = written.version
    assert version.last_updated.microsecond % 1000 == 0
    stored = fhir_json.loads_stored(version.content)
    assert stored["meta"] == {"source": "#chw-7", "versionId": "1", "lastUpdated": stored["meta"]["lastUpdated"]}
    async with repository_in(write=False) as repository:
        read = await repository.read("Patient", version.id)
        history = await repository.history("Patient", version.id)
    # What was answered is what is stored, in the resource row and in its history row alike.
    assert (read.content, read.last_updated) == (version.content, version.last_updated)
    assert [(v.content, v.last_updated) for v in history.versions] == [(version.content, version.last_updated)]
    assert stored["meta"]["lastUpdated"] == fhir_instant(version.last_updated)


async def test_what_a_create_writes_after_its_insert_is_stamped_after_it(engine, backend):
    """The lease taken by the insert is the transaction's: later stamps come from its clock."""
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        first = (await repository.create({"resourceType": "Patient", "gender": "male"})).version
        second = (await repository.create({"resourceType": "Patient", "gender": "female"})).version
        assert clock.is_open(connection)
    assert first.last_updated <= second.last_updated < first.last_updated + timedelta(seconds=30)


async def test_a_hemoglobin_reads_its_patient_and_locks_nothing(engine, repository_in, backend):
    config = ClinicalConfig.from_env({})
    async with repository_in(write=True) as repository:
        await repository.update("Patient", "kid", {"resourceType": "Patient", "id": "kid", "gender": "female",
                                                   "birthDate": "2025-01-10"})
    async with repository_in(write=True) as plain:
        repository = FhirRepository(plain.connection, LOCAL_EXPLORER, subscribers=clinical_subscribers(config))
        async with statements_sent(engine, repository) as seen:
            written = await repository.create(_hemoglobin(11.2))
    seen = _ours(seen)
    if backend == "postgres":
        assert [s.split()[0] for s in seen] == ["BEGIN;", "SELECT", "WITH"], seen
        assert "FROM resources WHERE resource_type" in seen[1] and _leased_inserts(seen) == 1, seen
        assert not any(s.startswith("SELECT pg_advisory_xact_lock(") for s in seen), seen
    stored = fhir_json.loads_stored(written.version.content)
    assert stored["interpretation"][0]["coding"][0]["code"]  # the rules' interpretation is in it
    # A severe one has a finding to record: it takes the child's lock, after its insert.
    async with repository_in(write=True) as plain:
        repository = FhirRepository(plain.connection, LOCAL_EXPLORER, subscribers=clinical_subscribers(config))
        async with statements_sent(engine, repository) as seen:
            await repository.create(_hemoglobin(5.0))
    if backend == "postgres":
        assert _leased_inserts(seen) == 1 and any(s.startswith("SELECT pg_advisory_xact_lock(") for s in seen), seen
        # after the lock: the Flag and its referral slots in one row-locking read, then the new
        # Flag and the new draft referral
        seen = _ours(seen)
        locked = next(n for n, s in enumerate(seen) if s.startswith("SELECT pg_advisory_xact_lock("))
        assert len(seen[locked + 1:]) == 3 and "FOR UPDATE" in seen[locked + 1], seen[locked:]
    async with repository_in(write=False) as repository:
        flags = await repository.search_matches("Flag", [("subject", "Patient/kid")])
        referrals = await repository.search_matches("ServiceRequest", [("subject", "Patient/kid")])
    assert len(flags) == 1 and len(referrals) == 1


async def _leases_held(connection) -> int:
    found = await connection.exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()")
    return int(found.scalar())


async def test_a_lease_rolled_back_with_its_savepoint_is_taken_again(engine, backend):
    """A batch entry's savepoint that rolls back releases the lease its create took: the next
    stamp must take a new one, or its version would be stamped with no lease held."""
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        with pytest.raises(RuntimeError):
            async with repository.savepoint():
                await repository.create({"resourceType": "Patient", "gender": "male"})
                if backend == "postgres":
                    assert await _leases_held(connection) == 1
                raise RuntimeError("the entry failed after its insert")
        assert not clock.is_open(connection)
        if backend == "postgres":
            assert await _leases_held(connection) == 0
        await repository.create({"resourceType": "Patient", "gender": "female"})
        assert clock.is_open(connection)
        if backend == "postgres":
            assert await _leases_held(connection) == 1



def _measurement(oid: str, code: str, value: float, unit: str, minute: int) -> dict[str, object]:
    return measurement("kid", code, value, unit, f"2026-12-05T10:{minute:02d}:00Z", oid=oid)


async def test_a_weight_holds_its_childs_lock_for_two_statements(engine, repository_in, backend, database_url):
    """While a weight holds its child's lock, the child's other measurements wait: after the lock,
    one statement reads the day's latest measurements and row-locks everything judged by id (growth
    Flags, referral slots, the latest measurements' z-scores), and one stores the new z-scores and
    the deletions of the replaced ones. Nothing else: the subscriptions were looked up before, for
    the weight itself, and the length the severe-stunting Flag cites is the day's latest, not read
    again."""
    subscribers = write_subscribers(make_settings(database_url))
    async with repository_in(write=True) as repository:
        await repository.update("Patient", "kid", {"resourceType": "Patient", "id": "kid", "gender": "female",
                                                   "birthDate": "2025-10-10"})
    for oid, code, value, unit, minute in (("len", "8302-2", 64.0, "cm", 1), ("w1", "29463-7", 6.9, "kg", 2)):
        async with repository_in(write=True) as plain:
            repository = FhirRepository(plain.connection, LOCAL_EXPLORER, subscribers=subscribers)
            await repository.update("Observation", oid, _measurement(oid, code, value, unit, minute))
    async with repository_in(write=False) as repository:
        before = await repository.read_many("Observation", ["len-lhfa", "w1-wfa", "w1-wflh"])
        stunting = await repository.read("Flag", "kid-severe-stunting")
    assert set(before) == {"len-lhfa", "w1-wfa", "w1-wflh"}
    assert flag_evidence(fhir_json.loads_stored(stunting.content)) == ["Observation/len"]
    async with repository_in(write=True) as plain:
        repository = FhirRepository(plain.connection, LOCAL_EXPLORER, subscribers=subscribers)
        async with statements_sent(engine, repository) as seen:
            await repository.update("Observation", "w2", _measurement("w2", "29463-7", 7.1, "kg", 3))
    seen = _ours(seen)
    if backend == "postgres":
        locked = next(n for n, s in enumerate(seen) if s.startswith("SELECT pg_advisory_xact_lock("))
        assert len(seen[locked + 1:]) == 2, seen[locked:]
        assert "search_token" in seen[locked + 1] and "FOR UPDATE" in seen[locked + 1], seen[locked:]
        assert "INSERT INTO resources" in seen[locked + 2] and "s_dd AS (DELETE" in seen[locked + 2], seen[locked:]
        assert not [s for s in seen[locked:] if "exchange_" in s], seen[locked:]
    async with repository_in(write=False) as repository:
        after = await repository.read_many("Observation", ["len-lhfa", "w1-wfa", "w1-wflh", "w2-wfa", "w2-wflh"])
    # the earlier weight's z-scores are undone, the new weight's made, the length's left as it was
    assert after["w1-wfa"].deleted and after["w1-wflh"].deleted
    assert not after["w2-wfa"].deleted and not after["w2-wflh"].deleted
    assert after["len-lhfa"].version_id == before["len-lhfa"].version_id == 1
    async with repository_in(write=False) as repository:
        still = await repository.read("Flag", "kid-severe-stunting")
    assert flag_evidence(fhir_json.loads_stored(still.content)) == ["Observation/len"]
