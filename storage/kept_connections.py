"""Connections kept open between transactions, so that a request takes one without SQLAlchemy's checkout.

`AsyncEngine.connect()` and `AsyncConnection.close()` each run in a greenlet of their own, around
the pool's checkout and checkin, the connection's characteristics set and reset and a new
Connection object per request: ~40 us in a quiet process, but in a serving worker under 32 clients
(every pooled connection in use, requests waiting in the pool's queue) one PostgreSQL worker served
1,300-1,900 reads by id per second with them and 2,100-2,600 without (bench/RESULTS.md, session 15).
Here a transaction takes an open connection of its kind (a read or a write: `storage.database`'s
option engines) from the engine's shelf, and gives it back there when it ends; a connection goes
straight from one transaction to the next one waiting for its kind.

What stays as the pool would have it:
- A connection is kept only as it would have gone back to the pool: after a clean end, open, valid,
  with no transaction left (an autocommit read's SQLAlchemy-level one is rolled back, which sends
  nothing). After any error, a cancellation included, it is closed: the pool checks it as it comes
  back, and replaces it if it was lost.
- The shelf holds at most one connection fewer than the pool (in use or idle): what does not use it
  (the health check, the bulk jobs, tools) always finds one in the pool.
- Waiting is first come, first served, bounded by the pool's timeout (then PoolTimeout: a 503). A
  transaction waiting for a write connection while reads sit idle gets one of their places.
- A connection goes back to the pool once it has been off it for the pool's recycle age (the pool
  then replaces it when due).
- Disposing of the engine closes the shelf's idle connections (SQLAlchemy's `engine_disposed`
  event), so no caller has to know the shelf exists.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.concurrency import await_, in_greenlet

from storage.pooled import held


@dataclass(slots=True)
class _Kept:
    connection: AsyncConnection
    since: float  # when it left the pool (time.monotonic())


# What a waiting transaction is handed: an open connection of its kind, or None, the right to open
# one (a place given up by a connection of another kind).
_Handed = _Kept | None


class Shelf:
    """The connections one engine's transactions hold, in use or idle, by the option engine (the kind)
    they were checked out with."""

    def __init__(self, places: int, *, recycle: float | None, timeout: float) -> None:
        self._places = places
        self._recycle = recycle if recycle is not None and recycle > 0 else math.inf
        self._timeout = timeout
        self._taken = 0  # places taken: connections checked out of the pool, in use or idle
        self._idle: dict[AsyncEngine, list[_Kept]] = {}
        self._waiting: collections.deque[tuple[AsyncEngine, asyncio.Future[_Handed]]] = collections.deque()

    @asynccontextmanager
    async def connection(self, kind: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """An open connection of `kind` for one transaction."""
        kept = await self._take(kind)
        try:
            yield kept.connection
        except BaseException:
            await self._drop(kept)  # its transaction has ended: closing it waits on nothing
            raise
        await self._give_back(kind, kept)

    async def _take(self, kind: AsyncEngine) -> _Kept:
        idle = self._idle.get(kind)
        if idle:
            return idle.pop()
        if self._taken < self._places:
            self._taken += 1
        elif not await self._close_idle_of_another_kind():  # its place is ours
            handed = await self._wait(kind)
            if handed is not None:
                return handed
        try:
            return _Kept(await kind.connect(), time.monotonic())
        except BaseException:
            self._give_place()
            raise

    async def _give_back(self, kind: AsyncEngine, kept: _Kept) -> None:
        connection = kept.connection
        if held(connection) is None or time.monotonic() - kept.since > self._recycle:
            await self._drop(kept)
            return
        if connection.in_transaction():
            # An autocommit read's SQLAlchemy-level transaction: nothing to roll back in the database,
            # but the next read must begin afresh (SQLite's time budget starts there).
            try:
                await connection.rollback()
            except BaseException:
                await self._drop(kept)
                raise
        waiting = self._first_waiting()
        if waiting is None:
            self._idle.setdefault(kind, []).append(kept)
        elif waiting[0] is kind:
            self._waiting.popleft()
            waiting[1].set_result(kept)
        else:
            await self._drop(kept)  # its place goes to the transaction waiting for another kind

    def _first_waiting(self) -> tuple[AsyncEngine, asyncio.Future[_Handed]] | None:
        while self._waiting and self._waiting[0][1].done():
            self._waiting.popleft()  # gave up waiting
        return self._waiting[0] if self._waiting else None

    async def _drop(self, kept: _Kept) -> None:
        """Close a connection (back to the pool) and give up its place."""
        try:
            await kept.connection.close()
        finally:
            self._give_place()

    def _give_place(self) -> None:
        """A place given up: to the first transaction waiting, if any (it opens a connection)."""
        waiting = self._first_waiting()
        if waiting is None:
            self._taken -= 1
            return
        self._waiting.popleft()
        waiting[1].set_result(None)

    async def _close_idle_of_another_kind(self) -> bool:
        """Close an idle connection, keeping its place for the caller; False when none is idle."""
        for idle in self._idle.values():
            if idle:
                kept = idle.pop()
                try:
                    await kept.connection.close()
                except BaseException:
                    self._give_place()
                    raise
                return True
        return False

    async def _wait(self, kind: AsyncEngine) -> _Handed:
        handed: asyncio.Future[_Handed] = asyncio.get_running_loop().create_future()
        self._waiting.append((kind, handed))
        try:
            async with asyncio.timeout(self._timeout):
                return await handed
        except BaseException as exc:
            if handed.done() and not handed.cancelled():
                # Handed something just as the wait ended: pass it on rather than lose a place.
                given = handed.result()
                if given is None:
                    self._give_place()
                else:
                    await self._give_back(kind, given)
            else:
                handed.cancel()  # `_give_back` and `_give_place` skip it
            if isinstance(exc, TimeoutError):
                raise PoolTimeout(f"no database connection within {self._timeout} s") from None
            raise

    @property
    def places(self) -> int:
        """How many connections the shelf's transactions may hold at once, in use or idle."""
        return self._places

    @property
    def idle_count(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def close_idle(self) -> None:
        """Close every idle connection for good (the engine is being disposed of: the pool they would
        go back to is gone)."""
        for idle in self._idle.values():
            while idle:
                connection = idle.pop().connection
                await connection.invalidate()
                await connection.close()
                self._give_place()


_shelves: weakref.WeakKeyDictionary[Engine, Shelf] = weakref.WeakKeyDictionary()


def install(engine: AsyncEngine, *, pool_capacity: int, recycle: float | None, timeout: float) -> None:
    """Give `engine` a shelf, emptied whenever the engine is disposed of. A pool of one connection
    gets none: the shelf would hold it for good."""
    if pool_capacity < 2:
        return
    shelf = _shelves[engine.sync_engine] = Shelf(pool_capacity - 1, recycle=recycle, timeout=timeout)

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _on_disposed(_engine: Any) -> None:
        # AsyncEngine.dispose() runs this in its greenlet: the closing can be awaited from here.
        if in_greenlet():
            await_(shelf.close_idle())


def idle(engine: AsyncEngine) -> int:
    """How many connections `engine`'s shelf keeps open for the next transactions, in nobody's use."""
    shelf = shelf_of(engine)
    return shelf.idle_count if shelf is not None else 0


def shelf_of(engine: AsyncEngine) -> Shelf | None:
    """The shelf `install` gave `engine`, if any."""
    return _shelves.get(engine.sync_engine)
