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

A single create whose write subscribers write nothing commits on its own statement, without BEGIN
or COMMIT (storage.driver_sql.fetch_alone): no BEGIN to carry the setting, so such a connection
plans `auto` for its whole session from then on, and each BEGIN on it sets the transaction back to
custom plans (`SET LOCAL`, in the same message), so every other transaction begins as before. It
is set back when the connection returns to the pool (storage.database), where a read may take it.
Once a statement has committed alone, the connection refuses a BEGIN until its transaction block
ends: a write after it would commit apart from the create, so it fails loudly instead.
"""

from __future__ import annotations

from typing import Any

import asyncpg

# What the BEGIN of a transaction planned generically adds to it, in the same message; and what
# the BEGIN of any other adds on a connection whose session plans generically.
_PLANNED = " SET LOCAL plan_cache_mode = auto;"
_CUSTOM = " SET LOCAL plan_cache_mode = force_custom_plan;"
_SESSION_GENERIC = "SET plan_cache_mode = auto"
_SESSION_CUSTOM = "SET plan_cache_mode = force_custom_plan"


class CommittedAlone(RuntimeError):
    """A transaction block tried to begin after its single create had committed on its own."""


class PlannedConnection(asyncpg.Connection):
    _generic_next = False
    session_generic = False  # the session plans `auto` (a statement committed alone set it)
    committed_alone = False  # in this transaction block, a statement has committed on its own

    def plan_next_transaction_generically(self) -> None:
        """The next BEGIN sent on this connection switches its transaction to `auto` planning."""
        self._generic_next = True

    def forget_generic_plan(self) -> None:
        """The transaction block has ended."""
        self._generic_next = False
        self.committed_alone = False

    async def plan_session(self, generic: bool) -> None:
        """Make the session plan `auto` (generic) or custom, if it does not already."""
        if self.session_generic != generic:
            await super().execute(_SESSION_GENERIC if generic else _SESSION_CUSTOM)
            self.session_generic = generic

    # asyncpg's own signature, timeout included
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        # asyncpg's BEGIN: "BEGIN;" on a fresh connection, "BEGIN ISOLATION LEVEL READ COMMITTED;" on
        # one that served an autocommit read before (SQLAlchemy then sets the default level back
        # explicitly). Matching the first alone left the generic plan to the connections that never
        # had: 731 of 1,835 hemoglobin inserts under load, counted with auto_explain.
        if not args and query.startswith("BEGIN") and query.endswith(";"):
            if self.committed_alone:
                raise CommittedAlone("this transaction's create has committed on its own: nothing may follow it")
            if self._generic_next:
                query += "" if self.session_generic else _PLANNED
            elif self.session_generic:
                query += _CUSTOM
        self._generic_next = False
        return await super().execute(query, *args, timeout=timeout)
