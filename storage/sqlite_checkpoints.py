"""SQLite's WAL checkpoints, in a thread of their own instead of inside a writer's COMMIT.

With SQLite's default automatic checkpoint, whichever COMMIT takes the write-ahead log past 1,000
pages copies the log into the database file and syncs both, while it holds the process's write turn
(storage.database). That kept COMMIT off the event loop's thread: one more trip to aiosqlite's thread
per write, waiting for the loop on the way back while every other writer waited for the turn
(bench/RESULTS.md, session 16). Here a file database's connections do no automatic checkpoint; a
COMMIT only appends to the log (no sync at synchronous=NORMAL) and runs on the loop's thread with
the writer's other statements, and within `interval` of a commit a PASSIVE checkpoint runs in this
checkpointer's thread: it copies what no reader still needs, never waits for a lock, and writers go on
meanwhile. What it leaves (a reader held an old snapshot, another process's checkpoint ran) is taken
by the next one. SQLite checkpoints what is left when the last connection to the file closes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

# How long a commit waits, at most, for the checkpoint that copies it into the file. SQLite's own
# cadence is 1,000 pages of log; a cadence in commits would let the log grow with the size of each
# commit (a 100-entry Bundle, a group of writers: storage.sqlite_writers), and every read of a page
# searches the log's index first. In time, the log holds at most what the server writes in 0.1 s,
# and a server that writes nothing has nothing left in it 0.1 s later.
INTERVAL_S = 0.1


class Checkpointer:
    """The checkpoints of one database file, for every connection of one engine."""

    def __init__(self, database: str, *, interval: float = INTERVAL_S) -> None:
        self.database = database
        self.interval = interval
        self._due: asyncio.TimerHandle | None = None  # the next checkpoint, once a commit asked for one
        self._due_loop: asyncio.AbstractEventLoop | None = None  # its loop (the tests run several)
        self._running: Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # opened and used in the executor's thread only
        self._closed = False

    def committed(self) -> None:
        """A write committed on one of the engine's connections (on the event loop's thread): the
        log is checkpointed within `interval`. Takes microseconds."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to schedule on: the next commit's, or the last close, takes it
            return
        if self._closed or (self._due is not None and self._due_loop is loop):
            return
        self._due = loop.call_later(self.interval, self._start)
        self._due_loop = loop

    def _start(self) -> None:
        self._due = None
        if self._closed:
            return
        if self._running is not None and not self._running.done():
            self.committed()  # one at a time: the next one after this interval
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="puente-sqlite-checkpoint")
        self._running = self._executor.submit(self._checkpoint)

    def close(self) -> None:
        """Wait for a running checkpoint, then close the thread and its connection (the engine is
        disposed of: SQLite checkpoints the rest when the file's last connection closes)."""
        self._closed = True
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if self._executor is None:
            return
        self._executor.submit(self._close_connection).result()
        self._executor.shutdown(wait=True)
        self._executor = None
        self._running = None
    def _checkpoint(self) -> None:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self.database, isolation_level=None)
            busy, frames, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            log.debug("checkpoint of %s: %s of %s frames copied (busy: %s)", self.database, copied, frames, busy)
        except sqlite3.Error as exc:  # a full disk, a file gone: the log keeps the writes, the next one retries
            log.warning("SQLite checkpoint of %s failed: %s", self.database, exc)

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
