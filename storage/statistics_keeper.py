"""Each `serve` process's loop that keeps planner statistics fresh when PostgreSQL's autovacuum is off.

Some deployments run PostgreSQL so (this machine's does): nothing then refreshes the statistics as
CHWs upload, and a search whose plan rests on them (two broad parameters, none naming a resource)
went from milliseconds to minutes on 40,000 never-analysed Observations. The hot paths plan without
statistics (tests/storage/test_plans_without_statistics.py); this covers the rest. Every
PUENTE_ANALYZE_SECONDS it runs storage.statistics.analyze_due, one cheap read of the tables' change
counters when nothing is due.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from storage import statistics
from storage.background import cancel_and_wait

log = logging.getLogger("puente.storage")


class StatisticsKeeper:
    def __init__(self, engine: AsyncEngine, *, every_seconds: float) -> None:
        self.engine = engine
        self.every_seconds = every_seconds
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def started_if_needed(cls, engine: AsyncEngine, *, every_seconds: float) -> StatisticsKeeper | None:
        """A running keeper when this is a PostgreSQL with autovacuum off and `every_seconds` > 0."""
        if every_seconds <= 0 or not await statistics.autovacuum_is_off(engine):
            return None
        keeper = cls(engine, every_seconds=every_seconds)
        keeper._task = asyncio.create_task(keeper._loop(), name="puente-statistics-keeper")
        return keeper

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_seconds)
            try:
                analysed = await statistics.analyze_due(self.engine)
            except Exception:  # a database hiccup: try again at the next tick
                log.exception("analysing the changed tables failed")
                continue
            if analysed:
                log.info("analysed %s (autovacuum is off)", ", ".join(analysed))
