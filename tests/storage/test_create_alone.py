"""A single create whose write subscribers write nothing commits by its own statement on PostgreSQL:
no BEGIN, no COMMIT, one round trip (storage.repository._insert_alone, storage.driver_sql.fetch_alone).

Counted at the driver (tests.storage.conftest.statements_sent). Whatever path a create takes, what
it answers is what is stored, once; a create that someone is to be told of (a live subscription of
its type), or that the rules answer (a severe hemoglobin), takes the transaction's path with all it
writes; a hook that says it writes nothing and then writes is refused loudly; and a connection goes
back to the pool planning as it came. SQLite takes its writer's path throughout (same answers).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import exchange
from auth.principal import LOCAL_EXPLORER
from exchange import tables
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Conflict
from storage.database import create_engine, transaction
from storage.pg_connection import CommittedAlone
from storage.repository import FhirRepository, WriteEvent
from storage.write_events import WriteSubscribers
from tests.conftest import make_settings
from tests.exchange.test_matching_cost import subscription
from tests.fixtures.builders import measurement
from tests.fixtures.databases import empty_all_tables
from tests.storage.conftest import statements_sent
from tests.storage.test_create_round_trips import _ours
from wiring import write_subscribers


def _heart_rate(n: int) -> dict[str, object]:
    return measurement("kid", "8867-4", 120 + n, "/min", f"2026-12-07T10:{n:02d}:00Z")


def _hemoglobin(value: float, minute: int = 0) -> dict[str, object]:
    return measurement("kid", "718-7", value, "g/dL", f"2026-12-07T11:{minute:02d}:00Z")


def _verbs(seen: list[str]) -> list[str]:
    return [s.split()[0].rstrip(";") for s in _ours(seen)]


async def _create_alone(engine: AsyncEngine, resource: dict[str, object], subscribers: WriteSubscribers,
                        ) -> tuple[list[str], object]:
    """Create `resource` as the create interaction does (its transaction holds nothing else)."""
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=subscribers)
        repository.create_is_whole_transaction = True
        async with statements_sent(engine, repository) as seen:
            written = await repository.create(resource)
    return seen, written


async def _stored_once(engine: AsyncEngine, resource_type: str, written: object) -> None:
    """The version answered is the one stored, in the resource row and its one history row."""
    version = written.version  # type: ignore[attr-defined]
    async with transaction(engine, write=False) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        read = await repository.read(resource_type, version.id)
        history = await repository.history(resource_type, version.id)
    assert (read.content, read.last_updated, read.version_id) == (version.content, version.last_updated, 1)
    assert [(v.content, v.last_updated) for v in history.versions] == [(version.content, version.last_updated)]


async def test_a_create_nobody_hears_of_is_one_statement(engine, backend, database_url):
    subscribers = write_subscribers(make_settings(database_url))
    for n in range(3):
        seen, written = await _create_alone(engine, _heart_rate(n), subscribers)
        if backend == "postgres":
            # the first create on a connection also makes its session plan generically, once
            assert [v for v in _verbs(seen) if v != "SET"] == ["WITH"], seen
            assert "quiet AS MATERIALIZED" in _ours(seen)[-1] and "pg_advisory_xact_lock_shared" in _ours(seen)[-1]
            assert not [s for s in seen if s.startswith(("BEGIN", "COMMIT"))], seen
        await _stored_once(engine, "Observation", written)
    if backend == "postgres":  # the engine's shelf keeps the connection: its session is set once
        seen, written = await _create_alone(engine, _heart_rate(9), subscribers)
        assert _verbs(seen) == ["WITH"], seen


async def test_a_hemoglobin_that_is_not_severe_reads_its_patient_then_commits_alone(engine, backend, database_url):
    subscribers = write_subscribers(make_settings(database_url))
    async with transaction(engine, write=True) as connection:
        await FhirRepository(connection, LOCAL_EXPLORER).update(
            "Patient", "kid", {"resourceType": "Patient", "id": "kid", "gender": "female", "birthDate": "2025-01-10"})
    seen, written = await _create_alone(engine, _hemoglobin(11.2), subscribers)
    if backend == "postgres":
        assert [v for v in _verbs(seen) if v != "SET"] == ["SELECT", "WITH"], seen
        assert "FROM resources WHERE resource_type" in _ours(seen)[0], seen
    stored = fhir_json.loads_stored(written.version.content)
    assert stored["interpretation"][0]["coding"][0]["code"]  # interpreted, as on every path
    await _stored_once(engine, "Observation", written)
    # A severe one is the rules' to answer: its Flag and draft referral commit with it.
    seen, severe = await _create_alone(engine, _hemoglobin(5.0, 1), subscribers)
    if backend == "postgres":
        verbs = _verbs(seen)
        assert "BEGIN" in verbs and verbs.index("BEGIN") < verbs.index("WITH"), seen
        assert any(s.startswith("SELECT pg_advisory_xact_lock(") for s in seen), seen
    await _stored_once(engine, "Observation", severe)
    async with transaction(engine, write=False) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        flags = await repository.search_matches("Flag", [("subject", "Patient/kid")])
        referrals = await repository.search_matches("ServiceRequest", [("subject", "Patient/kid")])
    assert len(flags) == 1 and len(referrals) == 1


async def _notified(engine: AsyncEngine) -> set[tuple[str, str]]:
    o = tables.outbox
    async with engine.connect() as connection:
        rows = await connection.execute(select(o.c.subscription_id, o.c.resource_id).where(o.c.kind == "notification"))
        return {(row.subscription_id, row.resource_id) for row in rows}


async def test_a_create_someone_subscribes_to_is_told_and_stored_once(engine, backend, database_url):
    """The statement that would commit alone finds a live subscription of its type: it stores
    nothing, and the create goes the transaction's way, its notification with it."""
    subscribers = write_subscribers(make_settings(database_url))
    async with transaction(engine, write=True) as connection:
        watcher = await FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers()).create(
            subscription("Observation?code=8867-4"))
    seen, written = await _create_alone(engine, _heart_rate(20), subscribers)
    if backend == "postgres":
        verbs = _verbs(seen)
        assert [v for v in verbs if v != "SET"][:2] == ["WITH", "BEGIN"], seen
        inserts = [s for s in _ours(seen) if s.startswith("WITH lease")]
        assert len(inserts) == 2 and "quiet AS" in inserts[0] and "quiet AS" not in inserts[1], seen
    await _stored_once(engine, "Observation", written)
    assert (watcher.version.id, written.version.id) in await _notified(engine)
    async with transaction(engine, write=False) as connection:
        found = await FhirRepository(connection, LOCAL_EXPLORER).search_matches("Observation", [("code", "8867-4")])
    assert len(found) == 1  # the first attempt stored nothing


def _record_of(resource_type: str, resource_id: str) -> dict[str, object]:
    """A record of the create, as the audit trail makes one (api.audit.record_of_create)."""
    return {"resourceType": "AuditEvent", "recorded": "2026-12-07T10:00:00Z", "action": "C",
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
            "agent": [{"who": {"display": "tester"}, "requestor": True}],
            "source": {"observer": {"display": "Puente FHIR server"}},
            "entity": [{"what": {"reference": f"{resource_type}/{resource_id}"}}]}


async def _create_recorded(engine: AsyncEngine, resource: dict[str, object], subscribers: WriteSubscribers,
                           resource_id: str | None = None) -> tuple[list[str], object, bool]:
    """As `_create_alone`, with a record built for the create (FhirRepository.record_with_create)."""
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=subscribers)
        repository.create_is_whole_transaction = True
        repository.record_with_create = _record_of
        async with statements_sent(engine, repository) as seen:
            try:
                written: object = await repository.create(resource, resource_id=resource_id)
            except Conflict as conflict:
                written = conflict
    return seen, written, repository.recorded_with_create


async def _records(engine: AsyncEngine, reference: str) -> list[tuple[str, object]]:
    """The records of `reference` (found through their index rows) and their history's stamps."""
    async with transaction(engine, write=False) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        found = await repository.search_matches("AuditEvent", [("entity", reference)])
        return [(record_id, [h.last_updated for h in (await repository.history("AuditEvent", record_id)).versions])
                for _, record_id in found]


async def test_a_record_is_stored_by_its_creates_statement_and_never_without_the_create(engine, backend,
                                                                                      database_url):
    subscribers = write_subscribers(make_settings(database_url))
    seen, written, recorded = await _create_recorded(engine, _heart_rate(40), subscribers)
    version = written.version  # type: ignore[attr-defined]
    await _stored_once(engine, "Observation", written)
    if backend != "postgres":  # the caller's transaction stores the record (api.dependencies)
        assert not recorded and await _records(engine, f"Observation/{version.id}") == []
        return
    assert recorded and [v for v in _verbs(seen) if v != "SET"] == ["WITH"], seen
    [(_, stamps)] = await _records(engine, f"Observation/{version.id}")
    assert stamps == [version.last_updated]  # one version, stamped with the create
    # an id already taken: the statement stores neither the resource nor its record
    seen, refused, recorded = await _create_recorded(engine, _heart_rate(41), subscribers, resource_id=version.id)
    assert isinstance(refused, Conflict) and not recorded
    assert len(await _records(engine, f"Observation/{version.id}")) == 1
    # a live subscription of the type: the quiet statement stores nothing, the record included
    async with transaction(engine, write=True) as connection:
        await FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers()).create(
            subscription("Observation?code=8867-4"))
    seen, watched, recorded = await _create_recorded(engine, _heart_rate(42), subscribers)
    assert not recorded and await _records(engine, f"Observation/{watched.version.id}") == []  # type: ignore[attr-defined]
    await _stored_once(engine, "Observation", watched)


class _SaysQuietButWrites:
    """A hook that breaks its word: it says a creation writes nothing, then writes."""

    def quiet_creation(self, resource_type: str, resource_id: str, resource: dict[str, object]) -> bool:
        return True

    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        if any(event.version.resource_type == "Observation" for event in events):
            await repository.create({"resourceType": "Patient", "gender": "other"})


async def test_a_hook_that_writes_after_a_create_committed_alone_is_refused(engine, backend):
    liar = WriteSubscribers(hooks=(_SaysQuietButWrites(),))
    if backend != "postgres":  # one transaction: the hook's write commits with the create
        await _create_alone(engine, _heart_rate(30), liar)
        async with transaction(engine, write=False) as connection:
            patients = await FhirRepository(connection, LOCAL_EXPLORER).search_matches("Patient", [("gender", "other")])
        assert len(patients) == 1
        return
    with pytest.raises(CommittedAlone):
        await _create_alone(engine, _heart_rate(30), liar)
    async with transaction(engine, write=False) as connection:
        patients = await FhirRepository(connection, LOCAL_EXPLORER).search_matches("Patient", [("gender", "other")])
    assert patients == []  # its write never reached the database
    # the connection's next transaction begins as ever
    async with transaction(engine, write=True) as connection:
        await FhirRepository(connection, LOCAL_EXPLORER).create({"resourceType": "Patient", "gender": "male"})


async def test_a_connection_goes_back_to_the_pool_planning_for_each_statement(database_url, backend):
    await empty_all_tables(database_url)
    engine = create_engine(database_url, pool_size=1)  # no shelf: every transaction's connection goes back
    try:
        for n in range(8):
            seen, written = await _create_alone(engine, _heart_rate(n), WriteSubscribers())
            await _stored_once(engine, "Observation", written)
            if backend == "postgres":
                assert _verbs(seen) == ["SET", "WITH"], seen
        if backend != "postgres":
            return  # plan cache modes are PostgreSQL's
        async with transaction(engine, write=False) as connection:
            mode = (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar()
            plans = (await connection.exec_driver_sql(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE 'WITH lease%quiet AS MATERIALIZED%'")).one()
    finally:
        await engine.dispose()
    assert mode == "force_custom_plan"
    # the statement committing alone keeps its generic plan once PostgreSQL finds it no costlier
    assert plans.custom_plans <= 5 and plans.generic_plans >= 3, plans
