"""The asyncpg connection of Puente's PostgreSQL engines: a transaction whose first statement is a
single create's insert is planned generically from its BEGIN.

Connections plan every statement for its values (`plan_cache_mode = force_custom_plan`, see
storage.database.create_engine), as a search needs; a write transaction switches to `auto` in its
first stamped statement (storage.clock), so what it runs after that keeps a generic plan once that
costs no more. A single create's insert is that first stamped statement itself (it takes the lease:
storage.version_writes.insert_leased), so it came too late for it: PostgreSQL planned it on every
create, 0.9 ms of its CPU against 0.2 ms with the generic plan (measured on this machine), about a
third of what a create cost the database. For such a transaction the BEGIN carries
`SET LOCAL plan_cache_mode = auto` in the same message (one round trip, as before); every other
transaction begins as it did (applying `auto` from the BEGIN to all of them cost a household visit's
transaction more database time than it saved: its first reads planned worse). A `SET LOCAL` ends
with the transaction.
"""

from __future__ import annotations

from typing import Any

import asyncpg

# What the BEGIN of a transaction planned generically adds to it, in the same message.
_PLANNED = " SET LOCAL plan_cache_mode = auto;"


class PlannedConnection(asyncpg.Connection):
    _generic_next = False

    def plan_next_transaction_generically(self) -> None:
        """The next BEGIN sent on this connection switches its transaction to `auto` planning."""
        self._generic_next = True

    def forget_generic_plan(self) -> None:
        self._generic_next = False

    # asyncpg's own signature, timeout included
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        # asyncpg's BEGIN: "BEGIN;" on a fresh connection, "BEGIN ISOLATION LEVEL READ COMMITTED;" on
        # one that served an autocommit read before (SQLAlchemy then sets the default level back
        # explicitly). Matching the first alone left the generic plan to the connections that never
        # had: 731 of 1,835 hemoglobin inserts under load, counted with auto_explain.
        if not args and self._generic_next and query.startswith("BEGIN") and query.endswith(";"):
            query += _PLANNED
        self._generic_next = False
        return await super().execute(query, *args, timeout=timeout)
