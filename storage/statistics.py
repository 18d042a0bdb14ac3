"""Planner statistics: what keeps the search indexes in use as the tables grow.

PostgreSQL plans every search from its statistics of the index tables. Its autovacuum daemon keeps
them current, but only when it is on, and only a while after a bulk load: until then a million new
index rows look like an empty table, and a referral pull that takes 10 ms becomes a sequential scan
taking seconds (measured on the 1M benchmark with autovacuum off). So bulk loads (`puente seed-demo`,
`puente reindex`, the benchmark's loader) refresh the statistics themselves, and the server warns at
start-up when autovacuum is off.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("puente.storage")


async def refresh(engine: AsyncEngine) -> None:
    """Statistics for every table: run it after writing many resources at once.

    PostgreSQL: VACUUM (ANALYZE), which also marks the pages all-visible, so that the index-only
    scans the searches rely on do not fetch every row from the heap. SQLite: ANALYZE.
    """
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM refuses transactions
            await connection.execute(text("VACUUM (ANALYZE)"))
        else:
            await connection.execute(text("ANALYZE"))
            await connection.commit()


async def autovacuum_is_off(engine: AsyncEngine) -> bool:
    """True when this is a PostgreSQL whose autovacuum daemon is off (statistics then go stale)."""
    if engine.dialect.name != "postgresql":
        return False
    async with engine.connect() as connection:
        return (await connection.execute(text("SHOW autovacuum"))).scalar() == "off"


async def warn_if_statistics_may_go_stale(engine: AsyncEngine) -> bool:
    if await autovacuum_is_off(engine):
        log.warning(
            "PostgreSQL's autovacuum is off: planner statistics will go stale as data grows and searches "
            "will slow to sequential scans. Turn it on (the default), or run ANALYZE after bulk loads."
        )
        return True
    return False
