"""The live subscriptions of the written types, read once per write transaction.

Every write asks which subscriptions may be told of it (matching) or of its deletion (deletions).
A transaction that writes one type several times (a household visit's Observations, a weight and
the z-scores and deletions the rules derive from it) asks the database once per type, and a
type nobody subscribes to costs its deletions no lookup of who was told before. The answer lives
in the transaction's storage.write_memo; a Subscription written in the transaction forgets it. On
PostgreSQL a single create's own insert statement answers it (ASKED), so a create whose type no
one watches is BEGIN, the insert and COMMIT.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import bindparam, or_, select

from exchange import tables
from exchange.subscriptions import LIVE
from storage import write_memo
from storage.repository import FhirRepository
from storage.sqlite_sql import SqliteStatement, rows_here
from storage.write_events import WriteQuestion

_MEMO = "exchange.live_subscriptions"

# Built once: every write of every type asks it.
_LIVE = tables.subscriptions.c
_LIVE_OF_TYPES = (
    select(_LIVE.id, _LIVE.resource_type, _LIVE.criteria, _LIVE.owner)
    .where(_LIVE.resource_type.in_(bindparam("types", expanding=True)), _LIVE.status.in_(LIVE))
    .order_by(_LIVE.id)
)
# One type (a write of one type: the usual case) in a fixed text, which SQLite runs on its connection
# in the writer's turn (storage.sqlite_sql); the statuses as plain values, not an expanding list.
_LIVE_OF_ONE_TYPE = SqliteStatement.of(
    select(_LIVE.id, _LIVE.resource_type, _LIVE.criteria, _LIVE.owner)
    .where(_LIVE.resource_type == bindparam("resource_type"), or_(*(_LIVE.status == status for status in LIVE)))
    .order_by(_LIVE.id)
)


class LiveRow(NamedTuple):
    """A live subscription row as the write's statement answered it (exchange.live_subscriptions.ASKED)."""

    id: str
    resource_type: str
    criteria: str
    owner: str


def _decode(answer: str | list[list[str]]) -> list[LiveRow]:
    # SQLAlchemy's asyncpg dialect decodes json on its connections; a bare connection answers text.
    rows = json.loads(answer) if isinstance(answer, str) else answer
    return [LiveRow(*row) for row in rows]


_STATUSES = ", ".join(f"'{status}'" for status in LIVE)  # constants of ours, not input
# The live subscriptions of the written type, as a single create's own statement reads them.
_LIVE_OF_WRITTEN_TYPE = (f"FROM exchange_subscriptions s WHERE s.resource_type = CAST(:resource_type AS text)"
                         f" AND s.status IN ({_STATUSES})")
# The same lookup, for one type, asked by a single create's own statement on PostgreSQL (storage's
# WriteQuestion): the create is BEGIN, its insert and COMMIT, without a lookup of its own.
ASKED = WriteQuestion(
    key=_MEMO,
    sql="(SELECT coalesce(json_agg(json_build_array(s.id, s.resource_type, s.criteria, s.owner) ORDER BY s.id),"
        f" '[]') {_LIVE_OF_WRITTEN_TYPE})",
    decode=_decode,
)

# What a creation's own statement checks before committing alone (storage.write_events.QuietCreation):
# no subscription of its type is live, so nobody is to be told of it.
NONE_LIVE = f"NOT EXISTS (SELECT 1 {_LIVE_OF_WRITTEN_TYPE})"


async def of_types(repository: FhirRepository, types: Iterable[str]) -> list[Any]:
    """The live subscription rows (id, resource_type, criteria, owner) whose type is one of
    `types`, by id: a topic subscription's triggers are rows of their own type."""
    wanted = sorted(set(types))
    known: dict[str, list[Any]] = write_memo.memo(repository.connection).setdefault(_MEMO, {})
    missing = [t for t in wanted if t not in known]
    if missing:
        rows = await _live_rows(repository, missing)
        for resource_type in missing:
            known[resource_type] = [row for row in rows if row.resource_type == resource_type]
    return sorted((row for t in wanted for row in known[t]), key=lambda row: row.id)


async def _live_rows(repository: FhirRepository, types: list[str]) -> list[Any]:
    if len(types) == 1:
        here = rows_here(repository.connection, _LIVE_OF_ONE_TYPE, {"resource_type": types[0]})
        if here is not None:
            return [LiveRow(**row) for row in here]
    return list((await repository.connection.execute(_LIVE_OF_TYPES, {"types": types})).all())


def forget(repository: FhirRepository) -> None:
    """A Subscription was written in this transaction: its rows may have changed."""
    write_memo.forget(repository.connection, _MEMO)
