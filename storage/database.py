"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import math
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_

from storage import clock, driver_sql, kept_connections, sqlite_checkpoints, sqlite_driver, sqlite_writers, write_memo
from storage import time_budget as budgets
from storage.pg_connection import PlannedConnection
from storage.pooled import dbapi_connection

# How many SQLite virtual-machine instructions run between two checks of the time budget: a check
# is a call into Python, and ~1,000 per second of query are too few to show in a profile.
_PROGRESS_INSTRUCTIONS = 100_000
# How long a SQLite statement waits for a lock another process holds (a second worker, a CLI command).
_BUSY_TIMEOUT_MS = 30_000


# Seconds a PostgreSQL connection is used before it is replaced (the pool's recycle, the shelf's too).
_PG_RECYCLE_S = 1800


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, pool_size: int = 10, time_budget: float | None = None, pool_timeout: float = 10
) -> AsyncEngine:
    """`time_budget` (seconds) bounds each transaction's work, for the server's engine: a statement
    past it fails (PostgreSQL's statement_timeout, a progress handler on SQLite) and the request
    answers 503. Tools that legitimately run long (migrations, reindex, seed-demo) pass none.

    SQL parameters are never rendered into exceptions or logs (`hide_parameters`): they are
    names, birth dates and DNI numbers.
    """
    if is_sqlite(url):
        return _sqlite_engine(url, time_budget, pool_timeout)
    server_settings = {
        "application_name": "puente",
        "plan_cache_mode": "force_custom_plan",
        "max_parallel_workers_per_gather": "0",
    }
    if time_budget:
        # Per connection, so it holds in every transaction and in the autocommit reads alike; a
        # transaction left idle (a handler waiting on something) is ended by the same budget.
        budget_ms = str(math.ceil(time_budget * 1000))
        server_settings |= {"statement_timeout": budget_ms, "idle_in_transaction_session_timeout": budget_ms}
    connect_args: dict[str, Any] = {"server_settings": server_settings, "connection_class": PlannedConnection}
    if _plain_loopback(url):
        connect_args["ssl"] = False
    engine = create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        # No overflow: an overflow connection is closed as soon as it is returned while the pool is
        # full, so under a steady load above the pool's size the pool opened and closed 200-400
        # connections per 6 s (each with its TLS handshake and backend start-up). Past `pool_size`
        # a request waits for a pooled connection instead, up to `pool_timeout`; more connections
        # than the worker can keep busy would only queue inside PostgreSQL.
        max_overflow=0,
        # A request waits this long for a pooled connection, then answers 503 (not SQLAlchemy's 30 s).
        pool_timeout=pool_timeout,
        # No pre-ping: it costs two round trips per request; a connection the server dropped is
        # invalidated by SQLAlchemy on the first error and the pool replaces it.
        pool_recycle=_PG_RECYCLE_S,
        # asyncpg's per-connection prepared-statement cache is what makes repeated queries cheap.
        # Custom plans: asyncpg prepares every statement, and PostgreSQL's generic plans ignore the
        # values that make a search selective; parallel workers cost more to start than they save here.
        connect_args=connect_args if make_url(url).get_driver_name() == "asyncpg" else {},
    )
    kept_connections.install(engine, pool_capacity=pool_size, recycle=_PG_RECYCLE_S, timeout=pool_timeout)
    event.listen(engine.sync_engine, "reset", _custom_plans_in_the_pool)
    return engine


def _custom_plans_in_the_pool(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
    """A connection goes back to the pool planning for each statement's values, as it came: a write
    connection whose single creates committed alone plans generically for its session
    (storage.pg_connection), and a read, a job or a tool may take it next. The shelf keeps write
    connections off the pool between transactions, so this runs when one is recycled or closed."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if (isinstance(driver, PlannedConnection) and driver.session_generic and reset_state.asyncio_safe
            and not reset_state.terminate_only):
        await_(driver.plan_session(generic=False))


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _plain_loopback(url: str) -> bool:
    """A PostgreSQL on this machine (loopback or a Unix socket) and no TLS asked for in the URL.

    asyncpg's default (`prefer`) negotiates TLS with any server that offers it, loopback included,
    where it protects nothing and costs a handshake per connection and encryption per message. An
    explicit `?ssl=...` or `?sslmode=...` is left to asyncpg.
    """
    parsed = make_url(url)
    if "ssl" in parsed.query or "sslmode" in parsed.query:
        return False
    return parsed.host is None or parsed.host in _LOOPBACK or parsed.host.startswith("/")


_SQLITE_POOL_SIZE = 5
_SQLITE_OVERFLOW = 10


def _sqlite_engine(url: str, time_budget: float | None, pool_timeout: float) -> AsyncEngine:
    engine = create_async_engine(
        url,
        hide_parameters=True,
        # aiosqlite with one trip to its thread per statement, and connections a read can stop.
        module=sqlite_driver.dbapi(),
        # check_same_thread off: a writer runs its statements on the event loop's thread
        # (sqlite_driver.running_inline), the connection having been opened in aiosqlite's.
        connect_args={"timeout": 30, "check_same_thread": False},
        # Pooled: opening the file and setting the pragmas on every request costs more than the query.
        pool_size=_SQLITE_POOL_SIZE,
        max_overflow=_SQLITE_OVERFLOW,
        pool_timeout=pool_timeout,
    )
    kept_connections.install(
        engine, pool_capacity=_SQLITE_POOL_SIZE + _SQLITE_OVERFLOW, recycle=None, timeout=pool_timeout)
    checkpointer = _checkpointer(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide between BEGIN and BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        if checkpointer is not None:  # its thread checkpoints, not the COMMIT (storage.sqlite_checkpoints)
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            dbapi_connection.checkpoints = checkpointer
        cursor.close()
        if time_budget:
            budget = budgets.attach(_record.info, time_budget)
            await_(dbapi_connection.driver_connection.set_progress_handler(budget.exceeded, _PROGRESS_INSTRUCTIONS))

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        budgets.restart(connection.connection)
        if options.get(_AUTOCOMMIT_READ):
            return  # a read: each statement is its own transaction (see `transaction`)
        # A writer takes the write lock up front: two writers that both read first would otherwise
        # deadlock on the upgrade and one would fail with "database is locked".
        if not options.get("write", False):
            connection.exec_driver_sql("BEGIN")
            return
        adapted = connection.connection.dbapi_connection
        if isinstance(adapted, sqlite_driver.StoppableConnection) and adapted.inline:
            # The writer in its turn (`_sqlite_write`) begins on the loop's thread when the lock is
            # free, as it is unless another process writes; then it waits in aiosqlite's thread, where
            # SQLite's busy handler may sleep without stopping the loop.
            if adapted.begin_immediate_here(_BUSY_TIMEOUT_MS):
                return
            with sqlite_driver.in_thread(adapted):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    if checkpointer is not None:

        @event.listens_for(engine.sync_engine, "engine_disposed")
        def _on_disposed(_engine: Any) -> None:
            checkpointer.close()

    _sqlite_writers[engine.sync_engine] = sqlite_writers.Writers(pool_timeout)
    return engine


def _checkpointer(url: str) -> sqlite_checkpoints.Checkpointer | None:
    """The checkpointer of a file database (None in memory, or for a URI SQLite opens itself)."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or parsed.query.get("uri"):
        return None
    return sqlite_checkpoints.Checkpointer(database)


_AUTOCOMMIT_READ = "puente_autocommit_read"
_writers: weakref.WeakKeyDictionary[Engine, AsyncEngine] = weakref.WeakKeyDictionary()
_readers: weakref.WeakKeyDictionary[Engine, AsyncEngine] = weakref.WeakKeyDictionary()


def _reader(engine: AsyncEngine) -> AsyncEngine:
    """`engine` with a read's options, made once: setting them on each connection through
    Connection.execution_options cost ~4 % of a read by id. PostgreSQL: SQLAlchemy's AUTOCOMMIT
    level. SQLite: not that level (resetting it when the connection goes back to the pool would turn
    the driver's implicit transactions back on; the connection is in autocommit already, isolation_level
    None), only our BEGIN left out (`_on_begin`)."""
    found = _readers.get(engine.sync_engine)
    if found is None:
        options = {"isolation_level": "AUTOCOMMIT"} if engine.dialect.name == "postgresql" else {_AUTOCOMMIT_READ: True}
        found = _readers[engine.sync_engine] = engine.execution_options(**options)
    return found


def _writer(engine: AsyncEngine) -> AsyncEngine:
    """`engine` with the `write` option, made once: a new option engine per request was ~1 % of a create."""
    found = _writers.get(engine.sync_engine)
    if found is None:
        found = _writers[engine.sync_engine] = engine.execution_options(write=True)
    return found
_sqlite_writers: weakref.WeakKeyDictionary[Engine, sqlite_writers.Writers] = weakref.WeakKeyDictionary()


class ReadStopped(Exception):
    """A SQLite read was stopped (`ReadStop.stop`): its client has gone, nobody is left to answer."""


class ReadStop:
    """The stop switch of one request's SQLite reads (api.limits turns it when the client disconnects).

    aiosqlite cannot cancel a statement running in its thread, and cancelling the task awaiting it
    would leave it running there, holding its connection. Stopping interrupts the statement instead
    (sqlite3's interrupt()) and fails the read's later statements (storage.sqlite_driver), so the
    read ends with an error and its connection goes back to the pool as after any failure.
    """

    __slots__ = ("_connections", "stopped")

    def __init__(self) -> None:
        self.stopped = False
        self._connections: set[sqlite_driver.StoppableConnection] = set()

    def stop(self) -> None:
        self.stopped = True
        for connection in self._connections:
            connection.stop()

    @contextmanager
    def covering(self, connection: sqlite_driver.StoppableConnection) -> Iterator[None]:
        """`connection` runs this request's read while the block runs (and is stopped with it)."""
        self._connections.add(connection)
        if self.stopped:
            connection.stop()
        try:
            yield
        finally:
            self._connections.discard(connection)
            connection.resume()  # before it goes back to the pool: the next request's is not stopped


_read_stop: ContextVar[ReadStop | None] = ContextVar("puente_read_stop", default=None)


@contextmanager
def stoppable_reads() -> Iterator[ReadStop]:
    """The SQLite reads of the current request (its task and the tasks it starts) can be stopped
    with the ReadStop given."""
    stop = ReadStop()
    token = _read_stop.set(stop)
    try:
        yield stop
    finally:
        _read_stop.reset(token)


async def _stoppable_connection(connection: AsyncConnection) -> sqlite_driver.StoppableConnection | None:
    """The SQLite connection under `connection` when it is ours (it can run inline and be stopped)."""
    adapted = await dbapi_connection(connection)
    return adapted if isinstance(adapted, sqlite_driver.StoppableConnection) else None


@asynccontextmanager
async def _stoppable(connection: AsyncConnection) -> AsyncIterator[None]:
    """A SQLite read under the current request's ReadStop, if it has one; a read failing because it
    was stopped raises ReadStopped (not a database failure to log or answer)."""
    stop = _read_stop.get()
    adapted = await _stoppable_connection(connection) if stop is not None else None
    if stop is None or adapted is None:
        yield
        return
    with stop.covering(adapted):
        try:
            yield
        except DBAPIError as exc:
            if stop.stopped:
                raise ReadStopped() from exc
            raise


@asynccontextmanager
async def key_lookup(connection: AsyncConnection) -> AsyncIterator[None]:
    """A read bounded by its key (one resource by its type and id) runs on the event loop's thread
    on SQLite: an index probe of microseconds, where the trips to aiosqlite's thread and back (three
    per statement, each waiting for the loop) cost a read by id most of its time. Elsewhere, and
    inside a writer's turn (already on the loop's thread), nothing changes. In WAL mode a reader
    does not wait for the writer, so the loop is not held by a lock."""
    adapted = await _stoppable_connection(connection) if connection.dialect.name == "sqlite" else None
    if adapted is None or adapted.inline:
        yield
        return
    with sqlite_driver.running_inline(adapted):
        yield


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """One database transaction: committed when the block ends, rolled back on any exception.

    A read runs in autocommit instead. On PostgreSQL, under READ COMMITTED a read-only transaction
    gives no stronger guarantee (each statement has its own snapshot either way), and BEGIN and
    COMMIT would be two more round trips on the hottest path. On SQLite each statement then reads
    its own snapshot too (as on PostgreSQL; searches and history answer only versions at or before
    their watermark, so a write committed between two statements is left for the next poll), and
    BEGIN and COMMIT are two fewer hops to aiosqlite's thread.

    A write on SQLite first waits for its turn in the process's writer queue (storage.sqlite_writers),
    before it checks out a connection; the request's body has been read by then (api.limits). It
    runs on the event loop's thread (sqlite_driver.running_inline), so its turn does not wait for
    the loop, in a savepoint of a transaction the writers ready together share: it returns once
    their COMMIT has succeeded.

    A SQLite read under the request's `ReadStop` (api.limits) is stopped in place when its client
    disconnects.
    """
    if not write:
        async with _connection(engine, _reader(engine)) as connection, _stoppable(connection):
            yield connection
        return
    if engine.dialect.name != "postgresql":
        async with _sqlite_write(engine) as connection:
            yield connection
        return
    written: clock.WriteClock | None = None
    async with _connection(engine, _writer(engine)) as connection, connection.begin():
        # The write's lease and clock (storage.clock) are taken with its first stamp, not here: a
        # single create takes them in its insert statement (storage.version_writes.insert_leased),
        # one round trip instead of two. Either way the same statement sets the transaction's plan
        # cache mode for what follows: searches keep custom plans (see create_engine), but a write's
        # statements plan the same whatever the values, and planning them every time was ~1 ms each;
        # "auto" keeps a generic plan once it costs no more than the custom ones (for the single
        # create's own statement, its BEGIN sets it: storage.pg_connection). (SQLite opens its clock
        # on the first stamp too, under the write lock it already holds.)
        try:
            yield connection
        finally:
            written = clock.close_write(connection)
            write_memo.forget(connection)
            driver_sql.forget_plan(connection)
    if written is not None:  # committed, its connection given back: not answered before it is visible
        await clock.settle(written)


async def open_read_pool(engine: AsyncEngine) -> None:
    """Open the SQLite pool's connections before the first request. A read by id never waits once
    it has a connection, so one pooled connection serves a whole burst of them; with none pooled
    yet, the first burst after start-up opened a connection per request (each a trip to a new
    thread, the pragmas, the file), 15 at once, and those reads waited 0.3-0.4 s."""
    if engine.dialect.name != "sqlite":
        return
    pool_size = getattr(engine.pool, "size", lambda: 1)()
    connections = [await engine.connect() for _ in range(pool_size)]
    for connection in connections:
        await connection.close()


def _connection(engine: AsyncEngine, kind: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A connection of `kind` (an option engine of `engine`) for one transaction: from the engine's
    shelf of open ones (storage.kept_connections) when it has one, else from the pool."""
    shelf = kept_connections.shelf_of(engine)
    return shelf.connection(kind) if shelf is not None else _plain_connection(kind)


@asynccontextmanager
async def _plain_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, given back to the pool by a plain `close()`. SQLAlchemy's own
    `async with engine.connect()` closes it in a task of its own, shielded from cancellation: three
    more turns of the event loop per request, each waiting behind every other request's (a SQLite
    read by id otherwise never yields; a SQLite writer waited them out holding the process's write
    turn). The shield guards a close that waits on the wire; these never do: a SQLite connection
    with nothing to roll back (reads are autocommit, a write has committed or rolled back before),
    a PostgreSQL autocommit read (no transaction for the pool to roll back). A cancellation (a
    PostgreSQL read past its budget) therefore cannot land inside the close.
    (tests/storage/test_loop_turns.py counts the loop turns.)"""
    connection = await engine.connect()
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def _sqlite_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A SQLite write transaction in the process's turn (storage.sqlite_writers: a savepoint of the
    transaction its group shares), its statements on the loop's thread from BEGIN IMMEDIATE (there
    when the write lock is free, see `_on_begin`) to COMMIT (there too for a file database, whose
    checkpoints run in a thread of their own: storage.sqlite_checkpoints)."""
    turns = _sqlite_writers[engine.sync_engine].here()
    opening = sqlite_writers.opening(lambda: _connection(engine, _writer(engine)), _stoppable_connection)
    async with turns.write(opening) as connection:
        yield connection
