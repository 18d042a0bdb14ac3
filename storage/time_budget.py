"""The time budget of the transaction a SQLite connection runs (the server's engine only).

A progress handler (set on the connection by storage.database) reads the deadline from aiosqlite's
thread or the loop's and interrupts a statement past it; the request then answers 503. PostgreSQL's
budget is the connection's statement_timeout instead: nothing to start.

The budget hangs on the pooled connection's `info`, under one key, so that every place a
transaction starts (SQLAlchemy's begin, an autocommit read run on the loop's thread, a writer's
savepoint in a shared transaction) restarts the same one.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy.pool import PoolProxiedConnection

_KEY = "puente_time_budget"


class TimeBudget:
    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = math.inf

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def exceeded(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0  # non-zero interrupts the statement


def attach(info: dict[Any, Any], seconds: float) -> TimeBudget:
    """A budget of `seconds` for the connection whose pool record's `info` this is."""
    budget = info[_KEY] = TimeBudget(seconds)
    return budget


def of(pooled: PoolProxiedConnection | None) -> TimeBudget | None:
    return None if pooled is None else pooled.info.get(_KEY)


def restart(pooled: PoolProxiedConnection | None) -> None:
    """Start the whole budget again for what `pooled` runs next (a connection without one: nothing)."""
    budget = of(pooled)
    if budget is not None:
        budget.start()
