"""How PostgreSQL plans Puente's statements (storage.pg_connection): a read in autocommit is planned
for its values every time, and so is the first statement of a transaction begun by a read (an
update's locked read); a single create's whole write, its one statement, keeps a generic plan once
PostgreSQL finds it no costlier. Counted by the server itself
(pg_prepared_statements, per connection), on one pooled connection."""

from __future__ import annotations

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
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
            mode = (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar()
    finally:
        await engine.dispose()
    # the single create's one statement: planned for its values the 5 times PostgreSQL always
    # tries, then generically
    assert insert.custom_plans <= 5 and insert.generic_plans >= 3, insert.statement[:80]
    assert (by_id.generic_plans, by_id.custom_plans) == (0, 8), by_id.statement[:80]
    # a transaction begun by anything else begins as before: its first statement planned for its values
    assert (locked.generic_plans, locked.custom_plans) == (0, 8), locked.statement[:80]
    assert mode == "force_custom_plan"  # the transaction's setting ended with it
