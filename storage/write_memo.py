"""What a write transaction has learnt and may reuse until it ends.

Write subscribers ask the same questions of every write in a transaction (which subscriptions are
live for Observations?): a household visit, or a weight and the z-scores the rules derive from it,
asked once per statement each time. The answer is kept on the connection for the rest of the
transaction, which is as fresh as a single statement's snapshot would have been (another
transaction's change after the first answer is as if it had committed after this one began).
`storage.database` forgets it when the transaction ends, the repository when a savepoint rolls
back (what was learnt inside it may have been undone), and whoever writes what an answer was read
from forgets that answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

_KEY = "puente.write_memo"


def memo(connection: AsyncConnection) -> dict[str, Any]:
    """The transaction's memo, by key (each subscriber names its own)."""
    known: dict[str, Any] = connection.info.setdefault(_KEY, {})
    return known


def forget(connection: AsyncConnection, key: str | None = None) -> None:
    """Forget one answer (`key`), or everything the transaction learnt."""
    if key is None:
        connection.info.pop(_KEY, None)
    else:
        connection.info.get(_KEY, {}).pop(key, None)
