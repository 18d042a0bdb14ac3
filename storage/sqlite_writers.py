"""A process's SQLite writers: one at a time, first come first served, and committed together.

SQLite lets one transaction write at a time; without a queue, every waiting writer held a pooled
connection and polled the lock in SQLite's busy handler (sleeping 1, 2, 5 ... ms between tries, so
the writer that got it was whoever polled at the right moment: under 32 clients the p99 of a create
was 5-7x its p50, and half the server's samples were in that loop). Queued here first (`Turns`), a
writer takes a connection only when it is its turn, and its BEGIN IMMEDIATE finds the lock free
unless another process (a second worker, a CLI command) holds it; the busy handler covers that case.

Group commit: from BEGIN to COMMIT a writer runs on the loop's thread without yielding
(storage.sqlite_driver), so writers hardly ever wait for each other's turn; what they share is the
loop's thread, and a COMMIT writes every page its transaction changed to the write-ahead log. A lone
create changes ~35 pages (its row, its history row, its index rows and every index over them),
140 KB and ~200 us of the loop's thread per create; four creates committed together wrote 17 pages
each, sixteen 7.5 (bench/RESULTS.md, session 16). So a writer whose work is done leaves the
transaction open and awaits its COMMIT. The first to do so starts a committer, a task that takes the
turn after the writers ready to run before it (those ready in the same turn of the loop, and any
queued for the turn): they add their work to the same transaction, each in a savepoint of its own,
and the committer commits them all. A writer alone waits one turn of the loop for its COMMIT.

What each writer sees and gets is what it had alone: its own savepoint (a failure rolls back its
work only, and it answers its error), its own time budget, clock and memo (storage.clock,
storage.write_memo: ended with its savepoint, so the next writer stamps after it and asks again);
it returns only once the COMMIT that holds its work has succeeded, and every writer of a group whose
COMMIT failed fails with it (none of them was acknowledged). A writer does see the uncommitted work
of the writers before it in its group: it would have seen it committed a moment later anyway, and
it commits or fails with it. Should SQLite roll the whole transaction back on its own (a full disk,
an I/O error), the group ends there and every writer in it fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import clock, sqlite_driver, time_budget, write_memo
from storage.pooled import held

_SAVEPOINT = "puente_writer"


class _Group:
    """One open transaction the writers add their work to, one after another."""

    def __init__(self, connection: AsyncConnection, stack: AsyncExitStack, sqlite: sqlite3.Connection) -> None:
        self.connection = connection
        self.stack = stack  # gives the connection back (and ends its inline running) when the group ends
        self.sqlite = sqlite
        self.waiting: list[asyncio.Future[None]] = []  # writers whose work is in, awaiting the COMMIT
        self.committer: asyncio.Task[None] | None = None
        self.ended = False

    def start_budget(self) -> None:
        time_budget.restart(held(self.connection))  # each writer has the whole budget, as its own transaction had


class Turns:
    """The writer queue of one engine on one event loop, and its open group."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = asyncio.Lock()  # wakes its waiters in arrival order
        self._group: _Group | None = None

    async def _take(self) -> None:
        """This writer's turn; a wait past the pool timeout answers as a pool timeout does (503), so a
        stuck writer cannot pile up every request behind it."""
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise PoolTimeout(f"no turn to write within {self.timeout} s") from None

    @asynccontextmanager
    async def write(self, opening: Callable[[AsyncExitStack], Awaitable[tuple[AsyncConnection, sqlite3.Connection]]]
                    ) -> AsyncIterator[AsyncConnection]:
        """A writer's transaction: a savepoint in the group's, opened by `opening` when there is none
        (it enters the connection into the stack given and begins the transaction)."""
        await self._take()
        turn_held = True
        try:
            group = self._group if self._group is not None else await self._open(opening)
            try:
                group.sqlite.execute(f"SAVEPOINT {_SAVEPOINT}")
            except BaseException as exc:
                await self._end(group, exc)
                raise
            group.start_budget()
            failure: BaseException | None = None
            try:
                yield group.connection
            except BaseException as exc:
                failure = exc
            finally:
                clock.close_write(group.connection)
                write_memo.forget(group.connection)
            try:
                group.start_budget()  # a writer stopped by its spent budget still ends its savepoint
                if failure is None:
                    group.sqlite.execute(f"RELEASE {_SAVEPOINT}")
                elif group.sqlite.in_transaction:
                    group.sqlite.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    group.sqlite.execute(f"RELEASE {_SAVEPOINT}")
                else:  # SQLite rolled the whole transaction back itself
                    raise failure
            except BaseException as exc:  # nobody's work in the transaction will be committed
                await self._end(group, exc)
                raise
            # Left open for the writers that run before the committer; this one returns with its COMMIT.
            outcome = self._leave_open(group, keep=failure is None)
            self._lock.release()
            turn_held = False
            if failure is not None:
                raise failure
            assert outcome is not None
            await outcome  # raises when the COMMIT failed
        finally:
            if turn_held:
                self._lock.release()

    async def _open(self, opening: Callable[[AsyncExitStack], Awaitable[tuple[AsyncConnection, sqlite3.Connection]]]
                    ) -> _Group:
        stack = AsyncExitStack()
        try:
            connection, sqlite = await opening(stack)
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._group = _Group(connection, stack, sqlite)
        return self._group

    def _leave_open(self, group: _Group, *, keep: bool) -> asyncio.Future[None] | None:
        """Leave the transaction to the writers that run before the group's committer (started here by
        the first to leave). Returns what this writer awaits (its work's COMMIT) when it has work in it."""
        if group.committer is None:
            group.committer = asyncio.get_running_loop().create_task(self._commit_later(group))
        if not keep:
            return None
        outcome = asyncio.get_running_loop().create_future()
        group.waiting.append(outcome)
        return outcome

    async def _commit_later(self, group: _Group) -> None:
        async with self._lock:  # after every writer ready before it, or queued for the turn: they joined
            with suppress(BaseException):  # handed to the writers waiting on it
                await self._end(group, None)

    async def _end(self, group: _Group, failure: BaseException | None) -> None:
        """COMMIT the group's work (or, after `failure` broke the transaction, roll back what is left)
        and tell every writer waiting on it; give its connection back."""
        if group.ended:
            return
        group.ended = True
        self._group = None
        error = failure
        try:
            if failure is None:
                group.start_budget()
                await group.connection.commit()
        except BaseException as exc:
            error = exc
        if error is not None and group.sqlite.in_transaction:
            # A COMMIT that failed (a deferred constraint, a full disk) leaves the transaction open,
            # and SQLAlchemy, which saw its transaction end, would give the connection back to the
            # pool still holding the write lock.
            try:
                group.sqlite.rollback()
            except BaseException:
                with suppress(BaseException):
                    await group.connection.invalidate()
        for outcome in group.waiting:
            if not outcome.done():  # a writer cancelled while it waited no longer listens
                if error is None:
                    outcome.set_result(None)
                else:
                    outcome.set_exception(error)
        if error is None:
            await group.stack.aclose()
            return
        with suppress(BaseException):  # the connection goes back to the pool as after any failure
            await group.stack.__aexit__(type(error), error, error.__traceback__)
        if failure is None:
            raise error


def opening(connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
            stoppable: Callable[[AsyncConnection], Awaitable[sqlite_driver.StoppableConnection | None]]
            ) -> Callable[[AsyncExitStack], Awaitable[tuple[AsyncConnection, sqlite3.Connection]]]:
    """How a group opens: a writer's `connection()` (from the shelf or the pool), its statements run
    on the loop's thread (sqlite_driver.running_inline), its transaction begun (BEGIN IMMEDIATE)."""

    async def open_group(stack: AsyncExitStack) -> tuple[AsyncConnection, sqlite3.Connection]:
        opened = await stack.enter_async_context(connection())
        adapted = await stoppable(opened)
        if adapted is None:
            raise TypeError("a SQLite writer's connection must be storage.sqlite_driver's")
        stack.enter_context(sqlite_driver.running_inline(adapted))
        await opened.begin()
        return opened, adapted.sqlite

    return open_group


class Writers:
    """The writer queues of one engine: one per event loop (the tests run several)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = weakref.WeakKeyDictionary()

    def here(self) -> Turns:
        loop = asyncio.get_running_loop()
        found = self._turns.get(loop)
        if found is None:
            found = self._turns[loop] = Turns(self.timeout)
        return found
