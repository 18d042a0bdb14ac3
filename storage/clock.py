"""Version stamps (`meta.lastUpdated`) and the watermark that makes polling safe.

A clinic polls `ServiceRequest?...&_lastUpdated=gt<W>` where W is the `Bundle.meta.lastUpdated` of
its previous answer. That misses nothing and repeats nothing only if W is a *watermark*: every
version in the answer is stamped at or before W, and every version not in it (not yet committed,
or committed after the answer was read) is stamped after W. A write stamped when it happens can
commit long after a later write (a 1,000-entry transaction against a one-resource create), so
"now" is not a watermark. How each database keeps one:

- **SQLite** runs one writer at a time (BEGIN IMMEDIATE holds the write lock until COMMIT), so stamps
  taken under the lock, each later than every committed stamp, are in commit order. The watermark
  is just after the newest committed stamp.
- **PostgreSQL** commits writers concurrently. Before its first stamp, each write transaction takes
  a shared advisory lock whose key carries the millisecond it was taken (a *lease*, released by
  COMMIT, ROLLBACK or a dead connection alike) and stamps its versions from the database clock,
  never before that moment. A single create takes it in its insert statement (PG_LEASE_CTES), one
  round trip for both; a lease taken inside a savepoint that rolls back is released with it, and
  the repository forgets the clock then, so the next stamp takes a new one. A reader's watermark
  is held just before the oldest open lease (or now, when none is open): what other transactions
  committed meanwhile is left for the next poll, so an answer lags the newest writes by as long as
  the oldest write still running. One clock (the database's)
  serves every worker on every host. A hot standby cannot see the primary's leases: poll the
  primary.

A search inside a write transaction (a Bundle's GET entry) leaves its own lease out: it sees its
own writes, which the same answer returns anyway. A write is answered only once its stamps are
behind the clock (`settle`), so a client's next search finds what it wrote.

Stamps fall on whole milliseconds and watermarks half-way between two, so no version is ever
stamped exactly at a watermark: `_lastUpdated=gtW` (after) and `_history?_since=W` (at or after)
select the same versions. Searches and history answer only versions stamped at or before W.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.driver_sql import DriverStatement, fetch
from storage.sqlite_sql import SqliteStatement, rows_here
from storage.tables import resources
from storage.versions import now_ms, utc

# A lease is an advisory lock on one bigint: LEASE_TAG in its top 20 bits, the millisecond the
# transaction started (since LEASE_EPOCH) in the low 44 (until the year 2581). pg_locks shows the
# key as classid (high 32 bits) and objid (low 32 bits), objsubid 1. Puente's other advisory locks
# use the two-int4 form (objsubid 2), so nothing else takes a key of this shape.
LEASE_TAG = 0x50756
LEASE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_HALF_MS = timedelta(microseconds=500)
_KEY = "puente.write_clock"

# Opening a write transaction on PostgreSQL, in the one round trip it already made to set its plan
# cache mode: the lease, then the clock read after it (so every stamp is after the lease's instant).
_PG_OPEN = DriverStatement.from_named(
    "SELECT set_config('plan_cache_mode', 'auto', true),"
    " pg_advisory_xact_lock_shared((CAST(:lease_tag AS bigint) << 44)"
    " + CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS bigint) - :lease_epoch_ms),"
    " clock_timestamp() AS floor"
)
# The same opening as a statement's first CTEs, for a write whose first stamped statement takes the
# lease itself (a single create: storage.version_writes). MATERIALIZED, and `clock` reading `lease`,
# so the lock is held before the clock is read; `stamp` is the first stamp, the floor rounded up to
# the millisecond as WriteClock.stamp rounds. The plan cache mode applies to the statements after.
PG_LEASE_CTES = (
    "lease AS MATERIALIZED (SELECT set_config('plan_cache_mode', 'auto', true) AS mode,"
    " pg_advisory_xact_lock_shared((CAST(:lease_tag AS bigint) << 44)"
    " + CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS bigint) - :lease_epoch_ms) AS held),"
    " clock AS MATERIALIZED (SELECT f AS floor, CASE WHEN date_trunc('milliseconds', f) = f THEN f"
    " ELSE date_trunc('milliseconds', f) + interval '1 millisecond' END AS stamp"
    " FROM (SELECT clock_timestamp() AS f FROM lease) AS t)"
)
LEASE_PARAMS = {"lease_tag": LEASE_TAG, "lease_epoch_ms": int(LEASE_EPOCH.timestamp()) * 1000}
_PG_WATERMARK = DriverStatement.from_named(
    "SELECT clock_timestamp() AS now, (SELECT min(((CAST(classid AS bigint) & 4095) << 32) + CAST(objid AS bigint))"
    " FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND (CAST(classid AS bigint) >> 12) = :lease_tag"
    " AND pid <> pg_backend_pid()"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS oldest"
)
_PARAMS = LEASE_PARAMS
_NEWEST_STAMP = select(func.max(resources.c.last_updated).label("newest"))
_NEWEST_STAMP_HERE = SqliteStatement.of(_NEWEST_STAMP)


@dataclass(frozen=True, slots=True)
class WriteClock:
    """The stamps of one write transaction: never before `floor`, on whole milliseconds."""

    floor: datetime
    started: float  # time.monotonic() when `floor` was read

    def stamp(self) -> datetime:
        elapsed = timedelta(seconds=time.monotonic() - self.started)
        return _ceil_ms(self.floor + elapsed)

    async def wait_until(self, instant: datetime) -> None:
        """Return once this clock reads `instant` (at once if it does already)."""
        delay = (instant - self.floor).total_seconds() - (time.monotonic() - self.started)
        if delay > 0:
            await asyncio.sleep(delay)


async def open_write(connection: AsyncConnection) -> WriteClock:
    """Start stamping in this write transaction (and, on PostgreSQL, take its lease)."""
    if connection.dialect.name == "postgresql":
        row = (await fetch(connection, _PG_OPEN, _PARAMS))[0]
        clock = WriteClock(utc(row["floor"]), time.monotonic())
    else:
        # Under SQLite's write lock: later than every committed stamp, whatever the wall clock did.
        newest = await _newest_stamp(connection)
        floor = now_ms() if newest is None else max(now_ms(), utc(newest) + _MS)
        clock = WriteClock(floor, time.monotonic())
    connection.info[_KEY] = clock
    return clock


async def _newest_stamp(connection: AsyncConnection) -> datetime | None:
    """SQLite: the newest stamp stored (on the sqlite3 connection itself in a writer's turn:
    storage.sqlite_sql)."""
    rows = rows_here(connection, _NEWEST_STAMP_HERE, {})
    newest: datetime | None = (await connection.execute(_NEWEST_STAMP)).scalar() if rows is None else rows[0]["newest"]
    return newest


def is_open(connection: AsyncConnection) -> bool:
    """Whether this transaction has its clock (and, on PostgreSQL, its lease) already."""
    return _KEY in connection.info


def opened(connection: AsyncConnection, floor: datetime) -> WriteClock:
    """The transaction's clock, from the floor a statement read just after it took the lease itself
    (PG_LEASE_CTES)."""
    clock = connection.info[_KEY] = WriteClock(utc(floor), time.monotonic())
    return clock


def close_write(connection: AsyncConnection) -> WriteClock | None:
    """Forget the transaction's clock (the pooled connection outlives it); the clock, if it had one."""
    clock: WriteClock | None = connection.info.pop(_KEY, None)
    return clock


async def settle(clock: WriteClock) -> None:
    """After a PostgreSQL write committed: return once a read that starts now has a watermark past
    every stamp the write gave. A stamp is the database clock rounded UP to the millisecond, a
    watermark the clock rounded DOWN less half a millisecond, so a search sent the moment the write
    was answered missed it: in process, 83 of 400 searches right after a PUT did not find it. The
    write's clock runs no faster than the database's (its floor was read there before it arrived),
    so waiting until it reads the last stamp plus a millisecond suffices: 1-2 ms, on no connection."""
    await clock.wait_until(clock.stamp() + _MS)


async def write_clock(connection: AsyncConnection) -> WriteClock:
    """This transaction's clock, opened on first use when the transaction was begun elsewhere."""
    clock: WriteClock | None = connection.info.get(_KEY)
    return clock if clock is not None else await open_write(connection)


async def watermark(connection: AsyncConnection) -> datetime:
    """A time at or after every committed stamp this connection will read, before every stamp to come."""
    if connection.dialect.name != "postgresql":
        newest = await _newest_stamp(connection)
        return (LEASE_EPOCH if newest is None else utc(newest)) + _HALF_MS
    own: WriteClock | None = connection.info.get(_KEY)
    if own is not None:
        # A write's own versions are stamped up to a millisecond ahead of the clock (rounded up):
        # a search right after them, inside the write, waits until the watermark can be past them.
        await own.wait_until(own.stamp() + _MS)
    row = (await fetch(connection, _PG_WATERMARK, _PARAMS))[0]
    limit = utc(row["now"])
    if row["oldest"] is not None:
        limit = min(limit, LEASE_EPOCH + timedelta(milliseconds=int(row["oldest"])))
    return _floor_ms(limit) - _HALF_MS


def fhir_watermark(value: datetime) -> str:
    """A watermark as a FHIR instant, to the tenth of a millisecond (it falls between two stamps)."""
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 100:04d}Z"


def _ceil_ms(value: datetime) -> datetime:
    micros = value.microsecond
    whole = value.replace(microsecond=micros // 1000 * 1000)
    return whole if whole == value else whole + _MS


def _floor_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)

