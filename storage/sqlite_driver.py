"""SQLAlchemy's aiosqlite adapter with a SQLite writer's statements run on the event loop's thread,
and a way to stop what a connection runs from the loop.

aiosqlite runs each call in the connection's own thread and hands the result back through the
event loop. SQLAlchemy's cursor makes four such trips per statement (open a cursor, execute, fetch,
close): under 32 clients each trip waits behind the other requests' turn on the loop, and the
SQLite writer holds the process's write turn meanwhile (storage.database's writer queue), so a
create's ~12 statements stretched its turn to ~46 loop cycles. Inside `running_inline` (the writer
in its turn) a statement runs on the calling thread instead and brings back everything SQLAlchemy
then reads (description, rows, rowcount, lastrowid): the statements take microseconds and cannot
wait for a lock the writer already holds. A read by id runs here too (storage.database.key_lookup:
an index probe, and WAL readers never wait for the writer); a statement of fixed text on this thread
skips SQLAlchemy's execution altogether (storage.sqlite_sql). Other reads keep SQLAlchemy's cursor and
its trips: a search may be long, and one trip per read instead of four gave the same throughput with
twice the p99 under 32 readers (it yields to the loop less often).

It reaches into aiosqlite's connection (`Connection._execute`, `Connection._conn`) as SQLAlchemy's
own adapter does for `isolation_level`; uv.lock pins the version this was written against (0.22).

A rollback with no transaction open is skipped (SQLAlchemy sends one as every connection goes back
to the pool). `stop()` interrupts the statement a connection runs and fails its later ones until the
connection goes back to the pool: how a read whose client went away stops on SQLite (api.limits).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from storage.sqlite_checkpoints import Checkpointer

Outcome = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def _run(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """The whole statement, its rows fetched (on the writer's thread: see `running_inline`)."""
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """A DBAPI cursor that executes and fetches on the calling thread (a writer in its turn)."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor is opened here (a trip of its own): `_run` opens and closes a sqlite3 one.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is open in the thread between statements

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            self._statement(operation, parameters, many=False)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            self._statement(operation, seq_of_parameters, many=True)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def _statement(self, operation: str, parameters: Any, *, many: bool) -> None:
        # Awaited: SQLAlchemy's async layer requires each statement to await something; this
        # completes without giving the event loop a turn.
        outcome = await_(self._here(operation, parameters, many))
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)

    async def _here(self, operation: str, parameters: Any, many: bool) -> Outcome:
        connection: Any = self._connection
        return _run(connection, operation, parameters, many)


class StoppableCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's own aiosqlite cursor, for statements outside a writer's turn and a read by id, failing once
    its connection is stopped. It makes four trips per statement, and yields to the loop between
    them: measured under 32 readers, one trip instead gave the same throughput with twice the p99."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if self._adapt_connection.stopped:  # type: ignore[attr-defined]
            self._adapt_connection._handle_exception(sqlite3.OperationalError("interrupted"))
        return super().execute(operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        if self._adapt_connection.stopped:  # type: ignore[attr-defined]
            self._adapt_connection._handle_exception(sqlite3.OperationalError("interrupted"))
        return super().executemany(operation, seq_of_parameters)


class StoppableConnection(AsyncAdapt_aiosqlite_connection):
    """An adapted aiosqlite connection whose statements can run on the loop's thread, and which can be stopped."""

    __slots__ = ("checkpoints", "inline", "stopped")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.stopped = False
        # Statements run on the calling (event loop) thread, not in aiosqlite's: set by the writer
        # that holds the process's write turn (storage.database.transaction), see `running_inline`.
        self.inline = False
        # Told of every commit, when the engine checkpoints in its own thread (storage.sqlite_checkpoints).
        self.checkpoints: Checkpointer | None = None

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for a statement run on the loop's thread (see `running_inline`)."""
        return self._connection._conn  # type: ignore[no-any-return]

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            return super().cursor(server_side)
        return InlineCursor(self) if self.inline else StoppableCursor(self)

    def commit(self) -> None:
        if self.inline and self.checkpoints is not None:
            # It only appends to the write-ahead log: the checkpoint that could make it wait on the
            # disk is the checkpointer's (storage.sqlite_checkpoints).
            try:
                self._connection._conn.commit()
            except Exception as error:
                self._handle_exception(error)
        else:
            super().commit()
        if self.checkpoints is not None:
            self.checkpoints.committed()

    def rollback(self) -> None:
        # SQLAlchemy rolls back every connection it ends or returns to the pool; with no transaction
        # open (autocommit reads, writes already committed) that was one more trip per request.
        raw = self._connection._connection
        if raw is not None and not raw.in_transaction:
            return
        super().rollback()

    def begin_immediate_here(self, busy_timeout_ms: int) -> bool:
        """BEGIN IMMEDIATE on this thread if the write lock is free now; False, with nothing begun,
        when another process holds it (SQLite's busy handler is off for the attempt, so it never
        sleeps here)."""
        raw = self._connection._conn
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return True

    def stop(self) -> None:
        """Interrupt the running statement (sqlite3's interrupt() may be called from any thread) and
        fail every later one until `resume()`: one between two statements is not running yet, and
        SQLite forgets an interrupt that finds nothing running."""
        self.stopped = True
        raw = self._connection._connection
        if raw is not None:
            raw.interrupt()

    def resume(self) -> None:
        self.stopped = False


class Dbapi(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module given to SQLAlchemy (`create_async_engine(module=...)`): its connections are ours."""

    def connect(self, *arg: Any, **kw: Any) -> StoppableConnection:
        adapted = super().connect(*arg, **kw)
        return StoppableConnection(self, adapted._connection)


def dbapi() -> Dbapi:
    return Dbapi(aiosqlite, sqlite3)


@contextmanager
def running_inline(connection: StoppableConnection) -> Iterator[None]:
    """Run the connection's statements on this thread while the block runs.

    For a SQLite writer that holds the process's write turn and the database's write lock: its
    statements take microseconds and cannot wait for a lock (BEGIN IMMEDIATE took it), but each
    trip to the thread waited for the event loop, busy with the other requests, while every other
    writer waited for the turn. Run here, the writer's work from BEGIN to COMMIT never yields to the
    loop: BEGIN IMMEDIATE goes to aiosqlite's thread only when another process holds the lock
    (storage.database), and COMMIT only appends to the write-ahead log where the engine checkpoints
    in a thread of its own (storage.sqlite_checkpoints; elsewhere COMMIT could checkpoint, and stays
    in aiosqlite's thread). The sqlite3 connection is opened with check_same_thread off for this;
    it is never used from two threads at once, since the writer awaits each trip it still makes.
    """
    connection.inline = True
    try:
        yield
    finally:
        connection.inline = False


@contextmanager
def in_thread(connection: StoppableConnection) -> Iterator[None]:
    """Back to aiosqlite's thread for the block, inside `running_inline`: for a statement that may wait."""
    connection.inline = False
    try:
        yield
    finally:
        connection.inline = True
