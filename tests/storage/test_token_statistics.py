"""An analysed token table keeps a short list of common values, and the hot reads still plan on
their indexes.

PostgreSQL weighs every clause on search_token against the table's multi-column statistics. With
1,000 common values (migration 0003) the list grew to 36 KB of code strings, decompressed and
matched for every plan: 7-18 ms to plan the clinical rules' read of a child's day, which then ran
in 0.5 ms, and that under the child's lock (bench/RESULTS.md, session 24). The planning time
follows the list's length (tests never time it); what a test can hold is the length, and that the
statements whose shape the query fixes keep that shape once statistics exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from auth.principal import LOCAL_EXPLORER
from storage import current_reads
from storage.database import create_engine, transaction
from storage.migrations import upgrade_async
from storage.repository import FhirRepository
from tests.fixtures.databases import fresh_database
from tests.fixtures.plans import both_plans_named, day_read_values

CODES = 1_500  # more kinds of (param, code) than either statistics target keeps


def _observations() -> list[tuple[dict, str]]:
    return [({"resourceType": "Observation", "status": "final",
              "code": {"coding": [{"system": "http://example.org/codes", "code": f"code-{n % CODES:04d}"}]},
              "subject": {"reference": f"Patient/p{n % 300}"}, "effectiveDateTime": "2026-12-04"}, f"o{n}")
            for n in range(2 * CODES)]


async def test_an_analysed_token_table_keeps_a_short_list_and_the_rules_read_keeps_its_plan(backend, tmp_path: Path):
    if backend != "postgres":
        return
    async with fresh_database(backend, tmp_path) as url, _analysed(url) as connection:
        assert 50 <= await _kept(connection) <= 100
        # the rules' read of a child's day (both plan modes): the day's keys drive, each a range
        # of the value index read backwards, each row picked found by its pk
        day = day_read_values("_rules-measurement")
        for plan in await both_plans_named(connection, current_reads.greatest_by_token(4, 2).driver, day):
            assert "Function Scan on unnest c" in plan and "code = c.code" in plan, plan
            assert plan.count("Index Only Scan Backward using ix_search_token_value0") == 1, plan
            assert "Index Scan using pk_resources" in plan and "Seq Scan" not in plan, plan


async def test_a_database_analysed_before_the_upgrade_gets_the_short_list_at_once(backend, tmp_path: Path):
    """Upgrading does not wait for the next ANALYZE (with autovacuum off, perhaps a long wait): the
    list gathered under the old target is gathered again by the migration."""
    if backend != "postgres":
        return
    async with fresh_database(backend, tmp_path) as url:
        await upgrade_async(url, "0013", downgrade=True)
        async with _analysed(url) as connection:
            assert await _kept(connection) == 1000
            await upgrade_async(url, "head")
            assert 50 <= await _kept(connection) <= 100


@asynccontextmanager
async def _analysed(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database at `url` once it holds the Observations and has been analysed."""
    engine = create_engine(url)
    try:
        async with transaction(engine, write=True) as connection:
            await FhirRepository(connection, LOCAL_EXPLORER).create_many(_observations())
    finally:
        await engine.dispose()
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE")
        yield connection
    finally:
        await connection.close()


async def _kept(connection: asyncpg.Connection) -> int:
    """How many common values the token table's multi-column statistics hold."""
    return int(await connection.fetchval(
        "SELECT count(*) FROM pg_statistic_ext s JOIN pg_statistic_ext_data d ON d.stxoid = s.oid,"
        " pg_mcv_list_items(d.stxdmcv) WHERE s.stxname = 'st_search_token'"))
