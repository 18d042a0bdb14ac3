"""How PostgreSQL plans Puente's statements (storage.pg_connection): a read in autocommit is planned
for its values every time, and so is the first statement of a transaction begun by a read (an
update's locked read); a single create's whole write, its one statement, keeps a generic plan once
PostgreSQL finds it no costlier, also after reads of its own (storage.driver_sql.plan_generically);
so does the clinical rules' read of a child's day, on an analysed database too.
Counted by the server itself (pg_prepared_statements, per connection), on one pooled connection."""

from __future__ import annotations

import pytest

from auth.principal import LOCAL_EXPLORER
from clinical import codes
from fhir_mappings import fhir_json
from rules import ClinicalConfig
from rules import subscribers as clinical_subscribers
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from storage.write_events import WriteSubscribers
from tests.fixtures.builders import measurement
from tests.fixtures.databases import empty_all_tables

_PLANS = ("SELECT generic_plans, custom_plans, statement FROM pg_prepared_statements"
          " WHERE statement LIKE :start ORDER BY custom_plans + generic_plans DESC LIMIT 1")


def _heart_rate(n: int) -> dict[str, object]:
    return measurement("kid", "8867-4", 120 + n, "/min", f"2026-12-06T10:{n:02d}:00Z")


async def test_a_transactions_first_statement_is_planned_generically_and_a_read_is_not(database_url, backend):
    await empty_all_tables(database_url)
    engine = create_engine(database_url, pool_size=1)  # one connection: one session's prepared statements
    try:
        async with transaction(engine, write=True) as connection:  # tables of some size, never analysed
            await FhirRepository(connection, LOCAL_EXPLORER).create_many(
                [(_heart_rate(n % 60), f"earlier-{n}") for n in range(3000)])
        created = []
        for n in range(8):
            async with transaction(engine, write=True) as connection:
                written = await FhirRepository(connection, LOCAL_EXPLORER).create(_heart_rate(n))
                created.append(written.version.id)
        for resource_id in created:
            async with transaction(engine, write=False) as connection:
                read = await FhirRepository(connection, LOCAL_EXPLORER).read("Observation", resource_id)
                assert read.version_id == 1
        for n, resource_id in enumerate(created):  # a transaction that starts with a locked read
            async with transaction(engine, write=True) as connection:
                changed = {**_heart_rate(n + 10), "id": resource_id}
                updated = await FhirRepository(connection, LOCAL_EXPLORER).update("Observation", resource_id, changed)
                assert updated.version.version_id == 2
        if backend != "postgres":
            return  # SQLite plans each statement once per connection, whatever the mode
        async with transaction(engine, write=False) as connection:
            insert = (await connection.exec_driver_sql(_PLANS.replace(":start", "'WITH lease%'"))).one()
            by_id = (await connection.exec_driver_sql(
                _PLANS.replace(":start", "'SELECT %FROM resources%WHERE resource_type = $1 AND id = $2%'"))).one()
            locked = (await connection.exec_driver_sql(_PLANS.replace(":start", "'%FOR UPDATE%'"))).one()
            stored = (await connection.exec_driver_sql(
                _PLANS.replace(":start", "'WITH h AS (INSERT INTO resource_history%'"))).one()
            mode = (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar()
    finally:
        await engine.dispose()
    # the single create's one statement: planned for its values the 5 times PostgreSQL always
    # tries, then generically
    assert insert.custom_plans <= 5 and insert.generic_plans >= 3, insert.statement[:80]
    assert (by_id.generic_plans, by_id.custom_plans) == (0, 8), by_id.statement[:80]
    # a transaction begun by anything else begins as before: its first statement planned for its values
    assert (locked.generic_plans, locked.custom_plans) == (0, 8), locked.statement[:80]
    # an update's one statement (its version, current row and index rows), after the stamp switched
    # the transaction to `auto`: its pk a scalar, it keeps a generic plan (as an array it was
    # planned for its values on every write: storage.version_writes._store_ctes)
    assert stored.custom_plans <= 5 and stored.generic_plans >= 3, (stored.custom_plans, stored.generic_plans)
    assert mode == "force_custom_plan"  # the transaction's setting ended with it


def _hemoglobin(n: int) -> dict[str, object]:
    return measurement("kid", "718-7", 11 + n / 10, "g/dL", f"2026-12-06T11:{n:02d}:00Z")


async def _failing_enricher(repository: FhirRepository, resource: dict[str, object]) -> None:
    raise RuntimeError("an enricher failed before the transaction sent anything")


async def test_a_hemoglobins_insert_is_planned_generically_after_its_patient_read(database_url, backend):
    """A hemoglobin's interpretation reads the child's Patient before the insert, so that read, not
    the insert, begins the transaction; the insert keeps its generic plan all the same, on a
    connection that served an autocommit read before (its BEGIN names the isolation level). A single
    create that fails before sending anything leaves the next transaction on its connection as it
    would have begun."""
    await empty_all_tables(database_url)
    engine = create_engine(database_url, pool_size=1)
    rules = clinical_subscribers(ClinicalConfig.from_env({}))
    try:
        async with transaction(engine, write=True) as connection:
            await FhirRepository(connection, LOCAL_EXPLORER).update(
                "Patient", "kid", {"resourceType": "Patient", "id": "kid", "gender": "male", "birthDate": "2025-02-01"})
        async with transaction(engine, write=False) as connection:  # SQLAlchemy then resets its isolation level
            assert (await FhirRepository(connection, LOCAL_EXPLORER).read("Patient", "kid")).id == "kid"
        created = []
        for n in range(8):
            async with transaction(engine, write=True) as connection:
                written = await FhirRepository(connection, LOCAL_EXPLORER, subscribers=rules).create(_hemoglobin(n))
                created.append(written.version)
        with pytest.raises(RuntimeError, match="enricher failed"):
            async with transaction(engine, write=True) as connection:
                failing = WriteSubscribers(enrichers=(_failing_enricher,))
                await FhirRepository(connection, LOCAL_EXPLORER, subscribers=failing).create(_hemoglobin(9))
        async with transaction(engine, write=True) as connection:  # the same connection, begun by a read
            await FhirRepository(connection, LOCAL_EXPLORER).read("Patient", "kid")
            if backend == "postgres":
                mode_after_failure = (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar()
        for n, version in enumerate(created):  # a transaction that starts with a locked read
            async with transaction(engine, write=True) as connection:
                changed = {**_hemoglobin(n + 20), "id": version.id}
                await FhirRepository(connection, LOCAL_EXPLORER).update("Observation", version.id, changed)
        async with transaction(engine, write=False) as connection:
            stored = await FhirRepository(connection, LOCAL_EXPLORER).search_matches("Observation", [])
            if backend == "postgres":
                insert = (await connection.exec_driver_sql(_PLANS.replace(":start", "'WITH lease%'"))).one()
                locked = (await connection.exec_driver_sql(_PLANS.replace(":start", "'%FOR UPDATE%'"))).one()
    finally:
        await engine.dispose()
    # every create stored, interpreted by the rules, and nothing of the one that failed
    assert len(stored) == 8
    assert all(fhir_json.loads_stored(v.content)["interpretation"] for v in created)
    if backend == "postgres":
        assert insert.custom_plans <= 5 and insert.generic_plans >= 3, insert.statement[:80]
        # the Patient's update and the eight Observations' each began with their locked read, as before
        assert (locked.generic_plans, locked.custom_plans) == (0, 9), locked.statement[:80]
        assert mode_after_failure == "force_custom_plan"


async def test_the_rules_read_of_a_childs_day_keeps_a_generic_plan_once_analysed(database_url, backend):
    """Each weight makes the rules read the child's day under the child's lock. Its keys as
    constants, an analysed database planned that read for its values on every weight (1.5 ms of
    binding for a 0.5 ms read, the lock held throughout); joined from an array, PostgreSQL keeps
    its generic plan after the five custom ones it always tries."""
    await empty_all_tables(database_url)
    engine = create_engine(database_url, pool_size=1)
    rules = clinical_subscribers(ClinicalConfig.from_env({}))
    try:
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER)
            await repository.update("Patient", "kid", {"resourceType": "Patient", "id": "kid", "gender": "female",
                                                       "birthDate": "2025-10-10"})
            # a crowded morning (a device feeding weights), then statistics gathered as autovacuum would
            await repository.create_many([(measurement("kid", "29463-7", 7.0, "kg",
                                                       f"2026-12-06T08:{n // 60:02d}:{n % 60:02d}Z"),
                                           f"earlier-{n}") for n in range(2000)])
            await connection.exec_driver_sql("ANALYZE")
        for n in range(10):
            async with transaction(engine, write=True) as connection:
                await FhirRepository(connection, LOCAL_EXPLORER, subscribers=rules).create(
                    measurement("kid", "29463-7", 7.0 + n / 10, "kg", f"2026-12-06T10:{n:02d}:00Z"))
        async with transaction(engine, write=False) as connection:
            scores = await FhirRepository(connection, LOCAL_EXPLORER).search_matches(
                "Observation", [("_tag", f"{codes.DATA_ORIGIN_SYSTEM}|derived")])
            if backend == "postgres":
                day = (await connection.exec_driver_sql(_PLANS.replace(":start", "'WITH g AS MATERIALIZED%'"))).one()
    finally:
        await engine.dispose()
    assert len(scores) == 1  # one weight-for-age z-score left, the latest weight's
    if backend == "postgres":
        assert day.custom_plans <= 5 and day.generic_plans >= 3, (day.custom_plans, day.generic_plans)
