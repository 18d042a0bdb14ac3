"""Planner statistics: what keeps the search indexes in use as the tables grow.

PostgreSQL plans every search from its statistics of the index tables. Its autovacuum daemon keeps
them current, but only when it is on, and only a while after a bulk load: until then a million new
index rows look like an empty table, and a referral pull that takes 10 ms becomes a sequential scan
taking seconds (measured on the 1M benchmark with autovacuum off). So bulk loads (`puente seed-demo`,
`puente reindex`, the benchmark's loader) refresh the statistics themselves, and when autovacuum is
off the server warns at start-up and does autovacuum's ANALYZE itself (`analyze_due`, run by
storage.statistics_keeper), on the tables that changed enough by PostgreSQL's own thresholds.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.repository import LOCK_CLASS, lock_id

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
            "PostgreSQL's autovacuum is off: planner statistics would go stale as data grows. Puente "
            "analyses the tables that changed every PUENTE_ANALYZE_SECONDS (0: never); turning autovacuum "
            "on (the default) also reclaims dead rows."
        )
        return True
    return False


# One process at a time analyses (each `serve` worker looks): a session lock among
# storage.repository's locks (their two-int4 key space, away from the write leases).
_ANALYZE_KEY = lock_id("puente.analyze")

# autovacuum's own rule for "needs ANALYZE" (its threshold and scale factor, as the DBA set them),
# with a never-analysed table (reltuples -1) counted as empty.
_DUE = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze >"
    " current_setting('autovacuum_analyze_threshold')::float8"
    " + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)"
    " ORDER BY s.relname"
)


async def analyze_due(engine: AsyncEngine) -> list[str]:
    """ANALYZE each of this schema's tables that autovacuum would analyse now, were it on; the names
    of those analysed. Nothing when another process holds the turn (it is doing the same).

    Each ANALYZE commits on its own (autocommit): it locks only its table, and only against DDL and
    other maintenance, never against reads or writes."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        turn = text("SELECT pg_try_advisory_lock(:c, :k)").bindparams(c=LOCK_CLASS, k=_ANALYZE_KEY)
        if not (await connection.execute(turn)).scalar():
            return []
        try:
            due = list((await connection.execute(_DUE)).scalars())
            quote = connection.dialect.identifier_preparer.quote
            for table in due:
                await connection.execute(text(f"ANALYZE {quote(table)}"))
            return due
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:c, :k)").bindparams(c=LOCK_CLASS, k=_ANALYZE_KEY))
