"""Connections kept open between transactions (storage.kept_connections), on both databases: a
transaction takes the last one's connection without going through the pool; a connection that
failed is not kept; waiting is first come, first served and bounded by the pool's timeout; a write
is never kept waiting by idle reads; what does not use the shelf still finds a connection in the
pool; and disposing of the engine closes what the shelf kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import pytest_asyncio
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import kept_connections
from storage.database import create_engine, transaction

POOL_TIMEOUT = 0.5


@pytest_asyncio.fixture(loop_scope="session")
async def small(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose shelf has a single place (a pool of two connections), so that every wait shows."""
    engine = create_engine(database_url, pool_size=2, pool_timeout=POOL_TIMEOUT)
    # SQLite's pool has a fixed size; the shelf's rules are the same whatever its number of places.
    kept_connections.install(engine, pool_capacity=2, recycle=None, timeout=POOL_TIMEOUT)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextmanager
def _checkouts(engine: AsyncEngine) -> Iterator[list[int]]:
    """How many times the pool checks a connection out while the block runs."""
    seen: list[int] = []

    def checkout(*_: object) -> None:
        seen.append(1)

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine.pool, "checkout", checkout)


async def _one(engine: AsyncEngine, *, write: bool) -> int:
    async with transaction(engine, write=write) as connection:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())


async def test_transactions_take_the_kept_connection_without_the_pool(small):
    await _one(small, write=False)
    await _one(small, write=True)
    with _checkouts(small) as checkouts:
        for _ in range(5):
            assert await _one(small, write=False) == 1
        assert len(checkouts) <= 1  # the read connection, if the write's took its place
        for _ in range(5):
            assert await _one(small, write=True) == 1
        assert len(checkouts) <= 2
    assert kept_connections.idle(small) == 1


async def test_a_failed_transaction_gives_its_connection_back_to_the_pool(small):
    await _one(small, write=False)
    with pytest.raises(DBAPIError):
        async with transaction(small, write=False) as connection:
            await connection.execute(text("SELECT no_such_column FROM no_such_table"))
    assert kept_connections.idle(small) == 0
    assert small.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _one(small, write=False) == 1  # and the place it held is free again


async def test_a_write_takes_the_place_of_an_idle_read(small):
    await _one(small, write=False)  # the shelf's one place: an idle read connection
    assert kept_connections.idle(small) == 1
    # (were the place not taken, the write would wait out the pool timeout and fail with PoolTimeout)
    assert await _one(small, write=True) == 1


async def test_what_does_not_use_the_shelf_finds_a_connection_in_the_pool(small):
    await _one(small, write=False)
    async with small.connect() as connection:  # the health check's way
        assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1


async def test_waiting_transactions_are_served_in_order(small):
    order: list[int] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with transaction(small, write=False):
            await release.wait()

    async def waiter(n: int, *, write: bool) -> None:
        async with transaction(small, write=write) as connection:
            order.append(n)
            await connection.execute(text("SELECT 1"))

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiting = []
    for n, write in enumerate([False, True, False, False]):
        waiting.append(asyncio.create_task(waiter(n, write=write)))
        await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holding, *waiting)
    assert order == [0, 1, 2, 3]
    assert kept_connections.idle(small) == 1


async def test_a_wait_past_the_pool_timeout_fails_and_loses_no_place(small):
    release = asyncio.Event()

    async def holder() -> None:
        async with transaction(small, write=True):
            await release.wait()

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    with pytest.raises(PoolTimeout):
        await _one(small, write=False)
    cancelled = asyncio.create_task(_one(small, write=False))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    release.set()
    await holding
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # The one place is free again: a transaction of either kind gets it (a lost place shows as
    # PoolTimeout, as above, not as a time this test would measure on a busy machine).
    assert await _one(small, write=False) == 1
    assert await _one(small, write=True) == 1


async def test_disposing_of_the_engine_closes_the_kept_connections(database_url):
    engine = create_engine(database_url, pool_size=3)
    async with transaction(engine, write=False) as connection:
        await connection.execute(text("SELECT 1"))
    assert kept_connections.idle(engine) == 1
    await engine.dispose()
    assert kept_connections.idle(engine) == 0
    assert connection.closed
