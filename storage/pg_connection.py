"""The asyncpg connection of Puente's PostgreSQL engines: a transaction's BEGIN also sets how its
statements are planned.

Connections plan every statement for its values (`plan_cache_mode = force_custom_plan`, see
storage.database.create_engine): reads run in autocommit, and a search's plan depends on how
selective its values are. A transaction's statements are the write path's fixed shapes (inserts,
locked reads by key, the rules' reads), which plan alike whatever the values: planning them every
time cost ~0.7 ms of PostgreSQL's CPU for a single create's one statement (0.9 ms custom against
0.2 ms generic, measured on this machine), about a third of what a create costs the database. So
the BEGIN that starts a transaction carries `SET LOCAL plan_cache_mode = auto` in the same message
(one round trip, as before): its first statement is planned as the ones after it, generically once
that costs no more than planning it for its values. A `SET LOCAL` ends with the transaction.
"""

from __future__ import annotations

from typing import Any

import asyncpg

# What asyncpg sends to start a transaction at the server's default isolation level, which is how
# SQLAlchemy's adapter starts every transaction on these engines.
_BEGIN = "BEGIN;"
BEGIN_PLANNED = "BEGIN; SET LOCAL plan_cache_mode = auto;"


class PlannedConnection(asyncpg.Connection):
    # asyncpg's own signature, timeout included
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        if not args and query == _BEGIN:
            query = BEGIN_PLANNED
        return await super().execute(query, *args, timeout=timeout)
