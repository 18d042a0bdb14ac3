"""The live subscriptions of the written types, read once per write transaction.

Every write asks which subscriptions may be told of it (matching) or of its deletion (deletions).
A transaction that writes one type several times (a household visit's Observations, a weight and
the z-scores and deletions the rules derive from it) asks the database once per type, and a
type nobody subscribes to costs its deletions no lookup of who was told before. The answer lives
in the transaction's storage.write_memo; a Subscription written in the transaction forgets it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select

from exchange import tables
from exchange.subscriptions import LIVE
from storage import write_memo
from storage.repository import FhirRepository

_MEMO = "exchange.live_subscriptions"

# Built once: every write of every type asks it.
_LIVE_OF_TYPES = (
    select(tables.subscriptions.c.id, tables.subscriptions.c.resource_type, tables.subscriptions.c.criteria,
           tables.subscriptions.c.owner)
    .where(tables.subscriptions.c.resource_type.in_(bindparam("types", expanding=True)),
           tables.subscriptions.c.status.in_(LIVE))
    .order_by(tables.subscriptions.c.id)
)


async def of_types(repository: FhirRepository, types: Iterable[str]) -> list[Any]:
    """The live subscription rows (id, resource_type, criteria, owner) whose type is one of
    `types`, by id: a topic subscription's triggers are rows of their own type."""
    wanted = sorted(set(types))
    known: dict[str, list[Any]] = write_memo.memo(repository.connection).setdefault(_MEMO, {})
    missing = [t for t in wanted if t not in known]
    if missing:
        rows = (await repository.connection.execute(_LIVE_OF_TYPES, {"types": missing})).all()
        for resource_type in missing:
            known[resource_type] = [row for row in rows if row.resource_type == resource_type]
    return sorted((row for t in wanted for row in known[t]), key=lambda row: row.id)


def forget(repository: FhirRepository) -> None:
    """A Subscription was written in this transaction: its rows may have changed."""
    write_memo.forget(repository.connection, _MEMO)
