"""The hot reads of current resources, each written twice and kept side by side: the SQLAlchemy
statement (both databases, and any caller whose access rules add conditions) and its asyncpg twin
(PostgreSQL, for callers who see everything: the clinical rules read a child's record on every
measurement). On SQLite, for the same callers, the SQLAlchemy statement's text compiled once runs
on the sqlite3 connection itself when the statement runs on the event loop's thread anyway (a read
by id, a writer in its turn: storage.sqlite_sql). tests/storage/test_current_reads.py runs every
form on the same data and checks that they answer alike.

Both are built once: composing a statement (and its cache key) cost SQLAlchemy more CPU than
PostgreSQL spends running it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, or_, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import sqlite_sql
from storage.driver_sql import DriverStatement, fetch
from storage.search.sql import fenced
from storage.tables import resources, search_date, search_reference, search_token
from storage.versions import StoredVersion, utc


@dataclass(frozen=True)
class CurrentRead:
    sql: Select[Any]
    driver: DriverStatement  # the same query for asyncpg, with the same parameter names
    # `sql` compiled once for SQLite (storage.sqlite_sql), None when its text depends on its values
    sqlite: sqlite_sql.SqliteStatement | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sqlite", sqlite_sql.SqliteStatement.of(self.sql))


_COLUMNS = "pk, resource_type, id, version_id, last_updated, deleted, content"
_R_COLUMNS = ", ".join(f"r.{name}" for name in _COLUMNS.split(", "))
_BY_IDS_SQL = select(resources).where(
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.id.in_(bindparam("ids", expanding=True)),
).order_by(resources.c.id)


def _probing(keys: str, match: str, *, lock: bool = False, order: str = "r.resource_type, r.id") -> DriverStatement:
    """Each row of `keys` probes `resources` for the one row `match` names: by id on the unique
    (resource_type, id) index, or by pk (the index rows a read picked first). (One `ANY` list of
    ids took the type's whole range through another index, and `pk IN (...)` walked the type, in
    the plans of a never-analysed table: tests/storage/test_plans_without_statistics.py.) `lock`:
    each row is locked as probed, so in the order of the keys given."""
    return DriverStatement.from_named(_probing_sql(keys, match, lock=lock, order=order))


def _probing_sql(keys: str, match: str, *, lock: bool = False, order: str = "r.resource_type, r.id") -> str:
    locking = " FOR UPDATE" if lock else ""
    # LIMIT 1 (a unique key: no more rows anyway) keeps the probe a probe: without it the planner
    # flattened the subquery into a hash join over the type's rows.
    return (f"SELECT {_R_COLUMNS} FROM {keys} CROSS JOIN LATERAL"
            f" (SELECT * FROM resources WHERE {match} LIMIT 1{locking}) r ORDER BY {order}")


# Current versions (deletions included) by id: `ids`, or `id` alone. One id goes to asyncpg as a
# scalar (the usual case: a child's Patient): PostgreSQL keeps a generic plan of that, where it
# planned the array form on every call.
BY_IDS = CurrentRead(_BY_IDS_SQL, _probing(
    "unnest(CAST(:ids AS text[])) AS k(id)", "resource_type = :resource_type AND id = k.id"))
# One id as a plain equality in the SQLAlchemy form too: an expanding IN of one value cost SQLAlchemy
# its post-compile pass on every read by id (~6 % of one on SQLite).
_BY_ONE_ID_SQL = select(resources).where(
    resources.c.resource_type == bindparam("resource_type"),
    resources.c.id == bindparam("id"),
)
BY_ONE_ID = CurrentRead(_BY_ONE_ID_SQL, DriverStatement.from_named(
    f"SELECT {_COLUMNS} FROM resources WHERE resource_type = :resource_type AND id = :id"
))

# Current versions of several types at once, by (type, id) pairs: `keys`, and on PostgreSQL the same
# pairs as the parallel arrays `types` and `ids`.
BY_KEYS = CurrentRead(
    select(resources).where(
        tuple_(resources.c.resource_type, resources.c.id).in_(bindparam("keys", expanding=True)),
    ).order_by(resources.c.resource_type, resources.c.id),
    _probing("unnest(CAST(:types AS text[]), CAST(:ids AS text[])) AS k(resource_type, id)",
             "resource_type = k.resource_type AND id = k.id"),
)

# BY_KEYS row-locked, in the order of the keys given (read_ahead sorts them, so every transaction
# locks in the same order).
LOCKED_BY_KEYS = CurrentRead(
    BY_KEYS.sql.with_for_update(),
    _probing("unnest(CAST(:types AS text[]), CAST(:ids AS text[])) AS k(resource_type, id)",
             "resource_type = k.resource_type AND id = k.id", lock=True),
)

# BY_IDS row-locked, for a write that judges them first; `ids` sorted, so every transaction locks in
# the same order (no deadlock). SQLite has no FOR UPDATE (its writer holds the database's lock).
LOCKED_BY_IDS = CurrentRead(
    _BY_IDS_SQL.with_for_update(),
    _probing("unnest(CAST(:ids AS text[])) AS k(id)", "resource_type = :resource_type AND id = k.id", lock=True),
)


def _referring_sql(one: bool) -> Select[Any]:
    # One target as a plain equality, as in the twin: a fixed text (SQLite runs it without
    # SQLAlchemy's execution in a writer's turn: storage.sqlite_sql) and no post-compile pass.
    target = search_reference.c.target_id
    return select(resources).where(
        resources.c.resource_type == bindparam("resource_type"),
        resources.c.deleted.is_(False),
        resources.c.pk.in_(
            select(search_reference.c.resource_pk).where(
                search_reference.c.resource_type == bindparam("resource_type"),
                search_reference.c.param == bindparam("param"),
                target == bindparam("target_id") if one else target.in_(bindparam("target_ids", expanding=True)),
                search_reference.c.target_type == bindparam("target_type"),
            )
        ),
    ).order_by(resources.c.pk)


_DATED_ROW = (
    select(search_date.c.resource_pk)
    .where(
        search_date.c.resource_pk == resources.c.pk,
        search_date.c.resource_type == bindparam("resource_type"),
        search_date.c.param == bindparam("date_param"),
        search_date.c.low < bindparam("date_before"),
        search_date.c.high >= bindparam("date_from"),
    )
    .exists()
)


def _coded_row(codes: int) -> Any:
    """The candidate's `code` is one of (`code_system0`, `code0`), (`code_system1`, `code1`), ...:
    judged on its own token rows, fetched by its pk alone (storage.search.sql.fenced). As `pk IN`
    the code's whole range, a database never analysed walked every hemoglobin of every child for one
    woman's pregnancy records (6,586 token rows for 27 answers at 20,000 Observations)."""
    own = fenced(search_token, search_token.c.resource_pk == resources.c.pk, name="own_token")
    return exists(select(own.c.resource_pk).where(
        own.c.resource_type == bindparam("resource_type"),
        own.c.param == "code",
        or_(*(and_(own.c.system == bindparam(f"code_system{i}"), own.c.code == bindparam(f"code{i}"))
              for i in range(codes))),
    ))


@functools.cache
def referring(one: bool, dated: bool, codes: int = 0) -> CurrentRead:
    """Live `resource_type` resources whose reference `param` points at `target_ids` (`target_id`
    when `one`), oldest first; `dated` keeps those with a `date_param` value overlapping
    [date_from, date_before), `codes` those whose `code` is one of that many (system, code) pairs
    (`_coded_row`), each judged on the candidate's own index rows, so the plan stays driven by the
    reference (a child has a few dozen Observations, all its life).

    PostgreSQL's twin takes the reference rows first and probes `resources` by pk for each
    (`_probing`), and reads a candidate's date and token rows by its pk
    alone (OFFSET 0): written as `pk IN (...)`, a database never analysed walked every resource of
    the type (at 1,000 of them; no longer at 8,000), and with codes the code's whole token range."""
    target = "target_id = :target_id" if one else "target_id = ANY(CAST(:target_ids AS text[]))"
    within = (
        " AND EXISTS (SELECT 1 FROM (SELECT resource_type, param, low, high FROM search_date"
        " WHERE resource_pk = k.resource_pk OFFSET 0) d WHERE d.resource_type = :resource_type"
        " AND d.param = :date_param AND d.low < CAST(:date_before AS timestamptz)"
        " AND d.high >= CAST(:date_from AS timestamptz))"
        if dated
        else ""
    )
    coded = (
        " AND EXISTS (SELECT 1 FROM (SELECT resource_type, param, system, code FROM search_token"
        " WHERE resource_pk = k.resource_pk OFFSET 0) t WHERE t.resource_type = :resource_type"
        " AND t.param = 'code' AND ("
        + " OR ".join(f"(t.system = :code_system{i} AND t.code = :code{i})" for i in range(codes)) + "))"
        if codes
        else ""
    )
    driver = _probing(
        "(SELECT DISTINCT resource_pk FROM search_reference WHERE resource_type = :resource_type"
        f" AND param = :param AND {target} AND target_type = :target_type) k",
        f"pk = k.resource_pk AND resource_type = :resource_type AND deleted IS false{within}{coded}",
        order="r.pk",
    )
    sql = _referring_sql(one)
    if dated:
        sql = sql.where(_DATED_ROW)
    if codes:
        sql = sql.where(_coded_row(codes))
    return CurrentRead(sql, driver)


async def select_current(
    connection: AsyncConnection, read: CurrentRead, conditions: list[Any], params: dict[str, Any]
) -> list[StoredVersion]:
    """The rows `read` selects, narrowed by `conditions` (access rules, codes). With none, a twin
    runs where it can (`_twin_rows`)."""
    records = await _twin_rows(connection, read, conditions, params)
    if records is not None:
        return [version_from_record(record) for record in records]
    rows = await connection.execute(read.sql.where(*conditions) if conditions else read.sql, params)
    return [version_from_row(row) for row in rows]


async def select_current_keyed(
    connection: AsyncConnection, read: CurrentRead, conditions: list[Any], params: dict[str, Any]
) -> list[tuple[int, StoredVersion]]:
    """As select_current, each version with its row's pk (for a write that follows)."""
    records = await _twin_rows(connection, read, conditions, params)
    if records is not None:
        return [(record["pk"], version_from_record(record)) for record in records]
    rows = await connection.execute(read.sql.where(*conditions) if conditions else read.sql, params)
    return [(row.pk, version_from_row(row)) for row in rows]


async def _twin_rows(
    connection: AsyncConnection, read: CurrentRead, conditions: list[Any], params: dict[str, Any]
) -> Sequence[Mapping[str, Any]] | None:
    """`read`'s rows without SQLAlchemy's execution, when nothing narrows it: asyncpg's twin on
    PostgreSQL; on SQLite, its compiled form, when the statement runs on the loop's thread anyway
    (storage.sqlite_sql). None: SQLAlchemy runs it."""
    if conditions:
        return None
    if connection.dialect.name == "postgresql":
        return await fetch(connection, read.driver, params)
    return sqlite_sql.rows_here(connection, read.sqlite, params)


def version_from_record(record: Mapping[str, Any]) -> StoredVersion:
    """A current version from an asyncpg record, or a SQLite twin's row, of the twins' columns."""
    return StoredVersion(record["resource_type"], record["id"], record["version_id"], utc(record["last_updated"]),
                         record["deleted"], record["content"])


def version_from_row(row: Any) -> StoredVersion:
    """A version from a SQLAlchemy row of `resources` or `resource_history`."""
    return StoredVersion(
        row.resource_type,
        row.id,
        row.version_id,
        utc(row.last_updated),
        row.deleted,
        row.content,
        # Only history rows have a method. (getattr with a default costs SQLAlchemy an exception
        # object per row: a fifth of reading a patient's observations.)
        method=row.method if "method" in row._fields else "GET",
    )


@functools.lru_cache(maxsize=64)
def greatest_by_token(keys: int, per_key: int) -> CurrentRead:
    """Live `resource_type` resources whose token `param` has code `key0`, `key1`, ...: for each
    key, the `per_key` rows with the greatest `system`. Each key is one range of the token table's
    value index (resource_type, param, code, system, pk) read backwards and cut by LIMIT, so the
    rows read stay `per_key` per key however many share it, and the plan needs no statistics.
    `per_key` is written into the statement (see _greatest_sql): one text per value, which its
    caller keeps to a few (the rules: 1 + the child's measurements the write holds)."""
    ranges = [
        select(search_token.c.resource_pk)
        .where(
            search_token.c.resource_type == bindparam("resource_type"),
            search_token.c.param == bindparam("param"),
            search_token.c.code == bindparam(f"key{i}"),
        )
        .order_by(search_token.c.system.desc())
        .limit(per_key)
        .subquery(f"k{i}")
        for i in range(keys)
    ]
    picked = union_all(*(select(r.c.resource_pk) for r in ranges))
    # No `resource_type` test on `resources` here: the token rows already carry it, and with it SQLite
    # walked every resource of the type through (resource_type, last_updated) checking the pk list
    # (tests/storage/test_plans_without_statistics.py checks both databases' plans).
    sql = select(resources).where(resources.c.deleted.is_(False), resources.c.pk.in_(picked)).order_by(resources.c.pk)
    # PostgreSQL's twin probes `resources` by pk for each token row picked (`_probing`). Written as
    # `pk IN (...)`, a table never analysed looked like a few rows of the type, and the planner
    # walked every Observation of the database for each weight, probing the ranges once per row
    # (9-11 ms at 850 Observations, growing with all of them).
    return CurrentRead(sql, DriverStatement.from_named(_greatest_sql(keys, per_key)))


def _greatest_sql(keys: int, per_key: int) -> str:
    # One range per key, the keys an array it joins (LATERAL), not one subquery per key: a key in a
    # clause of its own was a constant the planner weighed against the token table's statistics for
    # every plan (1.5 ms to bind, once analysed, a 0.5 ms read), and the generic plan, which needs
    # no planning, cost more than that custom plan, so `plan_cache_mode = auto` never took it. With
    # the keys joined and the LIMIT written in (a parameter is costed as 10 % of the range), both
    # plans are the same probes and the generic one is kept (tests/storage/test_plan_modes.py).
    # DISTINCT: a resource with two of the keys is answered once, as `IN` does.
    codes = ", ".join(f"CAST(:key{i} AS text)" for i in range(keys))
    ranges = (f"(SELECT DISTINCT t.resource_pk FROM unnest(ARRAY[{codes}]) AS c(code) CROSS JOIN LATERAL"
              " (SELECT resource_pk FROM search_token WHERE resource_type = :resource_type AND param = :param"
              f" AND code = c.code ORDER BY system DESC LIMIT {int(per_key)}) t) k")
    return _probing_sql(ranges, "pk = k.resource_pk AND deleted IS false", order="r.pk")


@functools.lru_cache(maxsize=64)
def greatest_locking_ahead(keys: int, per_key: int) -> DriverStatement:
    """greatest_by_token's twin (PostgreSQL, a caller who sees everything) that also row-locks and
    reads, in (type, id) order, the current rows of the (`lock_types`, `lock_ids`) pairs and of the
    `resource_type` ids made of each picked resource's id, '-' and one of `suffixes` (those that
    fit FHIR's 64 characters): what its caller reads locked next (the rules: a child's Flags and
    referral slots, the z-scores named after the day's latest measurements), so that it needs no
    statement of its own while the child's lock is held. Rows come tagged: `locked` false for the
    picked resources (pk order), true for the locked ones."""
    wanted = ("SELECT t, i FROM unnest(CAST(:lock_types AS text[]), CAST(:lock_ids AS text[])) AS w(t, i)"
              " UNION SELECT CAST(:resource_type AS text), g.id || '-' || s"
              " FROM g, unnest(CAST(:suffixes AS text[])) AS s WHERE length(g.id) + 1 + length(s) <= 64")
    locked = _probing_sql("(SELECT t AS resource_type, i AS id FROM wanted ORDER BY t, i) k",
                          "resource_type = k.resource_type AND id = k.id", lock=True)
    return DriverStatement.from_named(
        f"WITH g AS MATERIALIZED ({_greatest_sql(keys, per_key)}), wanted AS ({wanted})"
        f" SELECT false AS locked, g.* FROM g UNION ALL SELECT true AS locked, l.* FROM ({locked}) l"
    )
