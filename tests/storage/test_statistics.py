"""Planner statistics after bulk loads, and the start-up warning when PostgreSQL will not keep them."""

from __future__ import annotations

import logging

from sqlalchemy import text

from storage import statistics
from storage.database import create_engine


async def test_refresh_gives_the_planner_statistics(database_url, backend):
    engine = create_engine(database_url)
    try:
        await statistics.refresh(engine)
        async with engine.connect() as connection:
            if backend == "postgres":
                analyzed = (await connection.execute(text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'search_token'"
                ))).scalar()
            else:
                analyzed = (await connection.execute(text(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))).scalar() == 1
        assert analyzed
    finally:
        await engine.dispose()


async def test_a_warning_when_autovacuum_is_off(database_url, backend, caplog):
    engine = create_engine(database_url)
    try:
        off = False
        if backend == "postgres":
            async with engine.connect() as connection:
                off = (await connection.execute(text("SHOW autovacuum"))).scalar() == "off"
        with caplog.at_level(logging.WARNING, logger="puente.storage"):
            assert await statistics.warn_if_statistics_may_go_stale(engine) is off
        assert ("autovacuum is off" in caplog.text) is off
    finally:
        await engine.dispose()
