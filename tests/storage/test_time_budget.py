"""The time budget per transaction (issue 16): PostgreSQL's statement_timeout, a progress handler on
SQLite. A statement past it fails as a transient condition (503 at the edge) and frees its connection;
one within it, on the same engine, is not affected."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.errors import transient_reason
from storage import kept_connections
from storage.database import create_engine, transaction

BUDGET = 0.5
# Seconds of work on either database: a sleep on PostgreSQL, a long recursive count on SQLite.
SLOW = {
    "postgresql": "SELECT pg_sleep(5), CAST(:dni AS text)",
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500000000) "
    "SELECT max(i), :dni FROM n",
}


@pytest.mark.parametrize("write", [False, True])
async def test_a_statement_past_the_budget_fails_and_frees_its_connection(database_url, write):
    engine = create_engine(database_url, pool_size=1, time_budget=BUDGET)
    try:
        started = time.monotonic()
        with pytest.raises(DBAPIError) as failure:
            async with transaction(engine, write=write) as connection:
                await connection.execute(text(SLOW[engine.dialect.name]), {"dni": "45871236"})
        elapsed = time.monotonic() - started
        assert elapsed < 4, elapsed
        assert transient_reason(failure.value) == "the request's time budget (PUENTE_REQUEST_TIME_BUDGET) ran out"
        assert "45871236" not in str(failure.value)  # SQL parameters never reach a message or a log
        # the connection went back (to the pool or the shelf), usable, and the next transaction has a
        # budget of its own
        for _ in range(3):
            await asyncio.sleep(BUDGET / 2)
            async with transaction(engine, write=write) as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        assert engine.pool.checkedout() == kept_connections.idle(engine)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_tools_without_a_budget_are_not_interrupted(database_url):
    engine = create_engine(database_url)
    try:
        async with transaction(engine, write=False) as connection:
            slow = SLOW[engine.dialect.name].replace("pg_sleep(5)", "pg_sleep(1)").replace("500000000", "2000000")
            await connection.execute(text(slow), {"dni": "1"})
    finally:
        await engine.dispose()


async def test_a_cancelled_read_frees_its_connection(database_url, backend):
    """What the guard does, on PostgreSQL, to a read whose client went away: cancel it mid-statement.
    (On SQLite it does not: aiosqlite would orphan the connection with the statement still running in
    its thread; the progress handler ends the read at the budget instead.)"""
    if backend != "postgres":
        return
    engine = create_engine(database_url, pool_size=1, time_budget=30)
    try:
        with anyio.move_on_after(0.3) as scope:
            async with transaction(engine, write=False) as connection:
                await connection.execute(text(SLOW[engine.dialect.name]), {"dni": "1"})
        assert scope.cancelled_caught
        await asyncio.sleep(0.2)
        started = time.monotonic()
        async with transaction(engine, write=False) as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        assert time.monotonic() - started < 5  # not stuck behind the cancelled statement
        assert engine.pool.checkedout() == kept_connections.idle(engine)  # type: ignore[attr-defined]
        # The connection was dropped, not cancelled in place: PostgreSQL ends the orphaned statement when
        # it next talks to the client, and statement_timeout bounds it in any case.
        running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'"
        for _ in range(40):
            async with transaction(engine, write=False) as connection:
                if (await connection.execute(text(running))).scalar() == 0:
                    break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the cancelled statement still runs on the server")
    finally:
        await engine.dispose()
