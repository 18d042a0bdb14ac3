"""Writing a version's history row and index rows, in as few round trips as the database allows.
Every writer of versions comes here: the repository, the audit trail, and `puente reindex` for the
index rows alone.

On PostgreSQL the history insert, the removal of the old index rows and the insert of the new ones
are data-modifying CTEs of ONE statement whose index rows travel as one JSON document per table
(`json_to_recordset`) and the history rows as arrays (`unnest`): one round
trip and one prepared statement whatever the resource, instead of one round trip per table (a
create touches four to seven tables). SQLite runs in-process, where a statement costs microseconds
but each is a trip to aiosqlite's thread: new resources go through prebuilt statements in one trip
(storage.sqlite_writes); new versions of existing ones keep the plain statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, Numeric, bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings import fhir_json
from storage import clock, sqlite_writes, write_memo
from storage.clock import LEASE_EPOCH
from storage.driver_sql import DriverStatement, committed_alone, fetch, fetch_alone
from storage.search_rows import index_rows
from storage.tables import SEARCH_TABLES, deleted_reference, resource_history, resources, search_reference
from storage.versions import StoredVersion, fhir_instant, utc
from storage.write_events import WriteQuestion

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Authorship:
    """Who writes: `author` as access rules know it (auth.Principal.author), the OAuth client and the
    signed-in user, recorded on every history row; a new resource's author is its `created_by`."""

    author: str | None = None
    client: str | None = None
    user: str | None = None


SERVER = Authorship()  # the server's own writes (derived facts, audit records, the demo seed)


@dataclass(frozen=True, slots=True)
class VersionWrite:
    """One new version to record: its history row, and index rows replacing the resource's old ones."""

    pk: int
    version: StoredVersion
    resource: dict[str, Any] | None  # None: a deletion, which leaves no index rows
    # A new resource: its insert wrote its current row and it has no old index rows to remove.
    # Otherwise the resource's current row becomes this version, and its old index rows go.
    fresh: bool


_HISTORY_COLUMNS = tuple(c.name for c in resource_history.columns if c.name != "pk")


def _history_values(write: VersionWrite, by: Authorship) -> dict[str, Any]:
    version = write.version
    return {
        "resource_pk": write.pk,
        "resource_type": version.resource_type,
        "id": version.id,
        "version_id": version.version_id,
        "last_updated": version.last_updated,
        "method": version.method,
        "deleted": version.deleted,
        "content": version.content,
        "author": by.author,
        "author_client": by.client,
        "author_user": by.user,
    }


def _pg_type(column: Any) -> str:
    """The PostgreSQL type a parameter for `column` is cast to."""
    kind = column.type
    if isinstance(kind, Integer) or column.name == "resource_pk":
        return "bigint"
    if isinstance(kind, Numeric):
        return "numeric"
    if isinstance(kind, DateTime):
        return "timestamptz"
    if isinstance(kind, Boolean):
        return "boolean"
    return "text"


_TOMBSTONE_COLUMNS = ", ".join(c.name for c in deleted_reference.columns)


def _rows_by_kind(
    items: Iterable[tuple[int, str, dict[str, Any] | None, str | None]], *, base_url: str | None = None
) -> dict[str, list[Row]]:
    """The index rows of each (pk, resource type, resource, owner), by table kind.

    `owner`, when given, is the resource's id, added to each of its rows: a new resource has no pk
    yet, and the statement joins its rows to the pk it gets.
    """
    grouped: dict[str, list[Row]] = {kind: [] for kind in SEARCH_TABLES}
    for pk, resource_type, resource, owner in items:
        if resource is None:
            continue
        for kind, rows in index_rows(pk, resource_type, resource, base_url=base_url).items():
            if owner is not None:
                for row in rows:
                    row["owner"] = owner
            grouped[kind].extend(rows)
    return grouped


def _json_rows(rows: list[Row]) -> str:
    """A table's index rows as ONE json parameter (`json_to_recordset` turns it back into rows).

    One array per column cost asyncpg an abstract-class check per element, ~2 ms of a household
    visit's ~200 index values; a single string is one orjson call. Decimals travel as exact JSON
    numbers, times as RFC 3339 with their offset.
    """
    return fhir_json.dumps(rows).decode()


def _recordset(kind: str, table: Any, *, owner: bool, prefix: str = "") -> str:
    """`json_to_recordset(:{prefix}{kind}_rows) AS u(...)`: the table's columns with their types (and
    the owner id)."""
    columns = [f"{c.name} {_pg_type(c)}" for c in table.columns]
    if owner:
        columns.insert(0, "owner text")
    return f"json_to_recordset(CAST(:{prefix}{kind}_rows AS json)) AS u({', '.join(columns)})"


def _store_ctes(p: str = "", *, one: bool = False) -> list[str]:
    """The CTEs that record versions of resources (`store_many`); `p` prefixes their names and
    parameters, so that they can share a statement with a new resources' insert.

    `one`: a single version (an update, a deletion, the z-score the rules undo), whose pk is given
    as a scalar (`_pg_params`). Given as an array, PostgreSQL costed the generic plan for ten pks
    against the custom plan's one, kept planning it for its values (1-2.4 ms of its CPU on every
    write, the statement having ~30 CTEs), and its generic plan scanned small tables whole; with a
    scalar the generic plan probes each table's resource_pk index and is chosen after five runs."""
    def pks(name: str) -> str:
        return f"CAST(:{p}{name} AS bigint)" if one else f"ANY(CAST(:{p}{name} AS bigint[]))"

    history_arrays = ", ".join(
        f"CAST(:{p}h_{name} AS {_pg_type(resource_history.c[name])}[])" for name in _HISTORY_COLUMNS
    )
    ctes = [
        f"{p}h AS (INSERT INTO resource_history ({', '.join(_HISTORY_COLUMNS)})"
        f" SELECT * FROM unnest({history_arrays}))",
        # The current rows of existing resources, from the same arrays: an update or a deletion is
        # this one statement after its row lock, not an UPDATE and then this.
        f"{p}c AS (UPDATE resources SET version_id = v.version_id, last_updated = v.last_updated,"
        f" deleted = v.deleted, content = v.content FROM unnest(CAST(:{p}h_resource_pk AS bigint[]),"
        f" CAST(:{p}h_version_id AS bigint[]), CAST(:{p}h_last_updated AS timestamptz[]),"
        f" CAST(:{p}h_deleted AS boolean[]), CAST(:{p}h_content AS text[]))"
        " AS v(resource_pk, version_id, last_updated, deleted, content)"
        f" WHERE resources.pk = v.resource_pk AND resources.pk = {pks('stale')})",
    ]
    # Every CTE sees the snapshot from before the statement: a delete cannot touch the new rows, and
    # a deletion's references are copied from the rows the same statement removes.
    ctes.append(f"{p}dd AS (DELETE FROM deleted_reference WHERE resource_pk = {pks('stale')})")
    ctes.append(
        f"{p}td AS (INSERT INTO deleted_reference ({_TOMBSTONE_COLUMNS}) SELECT {_TOMBSTONE_COLUMNS}"
        f" FROM search_reference WHERE resource_pk = {pks('deleted')})"
    )
    for kind, table in SEARCH_TABLES.items():
        ctes.append(
            f"{p}d_{kind} AS (DELETE FROM {table.name} WHERE resource_pk = {pks('stale')})")
        names = ", ".join(c.name for c in table.columns)
        rows = _recordset(kind, table, owner=False, prefix=p)
        ctes.append(f"{p}i_{kind} AS (INSERT INTO {table.name} ({names}) SELECT {names} FROM {rows})")
    return ctes


def _one(writes: Sequence[VersionWrite]) -> bool:
    """Whether `_store_ctes` names the versions' pk as a scalar (`one`): the statement and its
    parameters (`_pg_params`) must agree."""
    return len(writes) == 1


@cache
def _pg_statement(one: bool) -> DriverStatement:
    return DriverStatement.from_named("WITH " + ",\n".join(_store_ctes(one=one)) + "\nSELECT 1")


def _pg_params(writes: Sequence[VersionWrite], by: Authorship, p: str = "") -> dict[str, Any]:
    """The parameters of `_store_ctes(p, one=_one(writes))`."""
    histories = [_history_values(w, by) for w in writes]
    params: dict[str, Any] = {f"{p}h_{name}": [h[name] for h in histories] for name in _HISTORY_COLUMNS}
    stale = [w.pk for w in writes if not w.fresh]
    deleted = [w.pk for w in writes if w.resource is None]
    if _one(writes):  # scalars (None: nothing)
        params[f"{p}stale"] = stale[0] if stale else None
        params[f"{p}deleted"] = deleted[0] if deleted else None
    else:
        params[f"{p}stale"], params[f"{p}deleted"] = stale, deleted
    grouped = _rows_by_kind((w.pk, w.version.resource_type, w.resource, None) for w in writes)
    for kind in SEARCH_TABLES:
        params[f"{p}{kind}_rows"] = _json_rows(grouped[kind])
    return params


def _through_driver(connection: AsyncConnection, through_driver: bool | None) -> bool:
    """The one-statement asyncpg form on PostgreSQL; the plain SQLAlchemy statements otherwise (and
    on PostgreSQL when a test asks, to check that the two forms store the same rows)."""
    return connection.dialect.name == "postgresql" if through_driver is None else through_driver


async def store_many(
    connection: AsyncConnection, writes: Sequence[VersionWrite], by: Authorship, *, through_driver: bool | None = None
) -> None:
    """Record several versions (of distinct resources) at once, each already row-locked by its
    writer unless fresh: current rows, history rows, index rows. One statement on PostgreSQL."""
    if not writes:
        return
    if _through_driver(connection, through_driver) and connection.dialect.name == "postgresql":
        await fetch(connection, _pg_statement(_one(writes)), _pg_params(writes, by))
        return
    await connection.execute(insert(resource_history), [_history_values(w, by) for w in writes])
    stale = [w.pk for w in writes if not w.fresh]
    if stale:
        await connection.execute(
            update(resources)
            .where(resources.c.pk == bindparam("b_pk"))
            .values(version_id=bindparam("b_version"), last_updated=bindparam("b_stamp"),
                    deleted=bindparam("b_deleted"), content=bindparam("b_content")),
            [{"b_pk": w.pk, "b_version": w.version.version_id, "b_stamp": w.version.last_updated,
              "b_deleted": w.version.deleted, "b_content": w.version.content} for w in writes if not w.fresh],
        )
        await connection.execute(delete(deleted_reference).where(deleted_reference.c.resource_pk.in_(stale)))
        deleted = [w.pk for w in writes if w.resource is None]
        if deleted:
            columns = [c.name for c in deleted_reference.columns]
            await connection.execute(
                insert(deleted_reference).from_select(
                    columns,
                    select(*(search_reference.c[name] for name in columns)).where(
                        search_reference.c.resource_pk.in_(deleted)
                    ),
                )
            )
    await replace_index_rows(connection, [(w.pk, w.version.resource_type, w.resource) for w in writes], stale=stale)


async def replace_index_rows(
    connection: AsyncConnection,
    items: Sequence[tuple[int, str, dict[str, Any] | None]],
    *,
    stale: Sequence[int],
    base_url: str | None = None,
) -> None:
    """The index rows of each (pk, type, resource) in place of the rows the `stale` pks had: how
    SQLite stores a version's rows, and how `puente reindex` rebuilds them on either database (the
    PostgreSQL write path does the same inside its one statement)."""
    if stale:
        for table in SEARCH_TABLES.values():
            await connection.execute(delete(table).where(table.c.resource_pk.in_(stale)))
    grouped = _rows_by_kind(((pk, resource_type, resource, None) for pk, resource_type, resource in items),
                            base_url=base_url)
    for kind, rows in grouped.items():
        if rows:
            await connection.execute(insert(SEARCH_TABLES[kind]), rows)


def new_version(
    resource: dict[str, Any],
    resource_id: str,
    version_id: int,
    stamp: datetime,
    *,
    method: str,
    instant: str | None = None,
) -> StoredVersion:
    """The version to store: the client's resource with our id and meta.versionId/lastUpdated, as
    the exact JSON served. Every writer stamps here (the repository, the audit trail); `resource`
    gets the same id and meta, for the write hooks and the index rows. (`instant`: the text put in
    meta.lastUpdated instead of `stamp`'s, for a statement that stamps it: `insert_leased`.)"""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = fhir_instant(stamp) if instant is None else instant
    stored = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    stored.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    resource["id"] = resource_id
    resource["meta"] = meta
    content = fhir_json.dumps(stored).decode()
    return StoredVersion(resource["resourceType"], resource_id, version_id, stamp, False, content, method=method)


@cache
def _pg_insert_new_statement(
    leased: bool = False, questions: tuple[WriteQuestion, ...] = (), storing: bool = False,
    conditions: tuple[str, ...] | None = None, storing_one: bool = False, records: bool = False,
) -> DriverStatement:
    """New resources, their history rows and index rows in ONE statement (one round trip).

    The pks exist only once `r` has inserted the resources, so history and index rows find theirs by
    joining on (resource_type, id). An id already taken is skipped by `r` and so gets nothing else.

    `leased`: one resource, in a transaction that has no clock yet. The statement takes the write
    lease first (storage.clock.PG_LEASE_CTES) and stamps the resource itself, its content being
    given in two halves around meta.lastUpdated: the lease, the stamp and the insert are one round
    trip instead of two. It answers the floor and the stamp even when the id was taken, and the
    write subscribers' `questions` about the written type (`q0`, `q1`, ...).

    `storing`: the same statement also records versions of existing resources (store_many's CTEs,
    their parameters prefixed `s_`; `storing_one`: a single version, its pk a scalar): the rules'
    new z-scores and the ones they undo, one round trip while the child's lock is held.

    `conditions` (leased only): the statement commits alone (`insert_alone`), so it inserts only
    while they all hold, and answers whether they did (`quiet`).

    `records` (leased only): the server's own records of the create (its AuditEvent: `c_`
    parameters, each content in halves around the same stamp) are stored by the statement too, if
    and only if it stored the resource.
    """
    stamped = "to_char(clock.stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    if leased:
        stamp = "clock.stamp"
        content = f"CAST(:head AS text) || {stamped} || CAST(:tail AS text)"
        source = "clock, unnest(CAST(:types AS text[]), CAST(:ids AS text[])) AS u(t, i)"
        if conditions is not None:
            source += " WHERE (SELECT ok FROM quiet)"
    else:
        stamp, content = "s", "c"
        source = ("unnest(CAST(:types AS text[]), CAST(:ids AS text[]), CAST(:stamps AS timestamptz[]),"
                  " CAST(:contents AS text[])) AS u(t, i, s, c)")
    ctes = [clock.PG_LEASE_CTES] if leased else []
    if conditions is not None:
        ctes.append(f"quiet AS MATERIALIZED (SELECT {' AND '.join(f'({c})' for c in conditions) or 'true'} AS ok)")
    ctes += [
        "r AS (INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, created_by)"
        f" SELECT t, i, 1, {stamp}, false, {content}, CAST(:author AS text) FROM {source}"
        " ON CONFLICT (resource_type, id) DO NOTHING RETURNING pk, resource_type, id, last_updated, content)",
        "h AS (INSERT INTO resource_history (resource_pk, resource_type, id, version_id, last_updated, method,"
        " deleted, content, author, author_client, author_user)"
        " SELECT r.pk, r.resource_type, r.id, 1, r.last_updated, u.m, false, r.content, CAST(:author AS text),"
        " CAST(:author_client AS text), CAST(:author_user AS text)"
        " FROM r JOIN unnest(CAST(:types AS text[]), CAST(:ids AS text[]), CAST(:methods AS text[])) AS u(t, i, m)"
        " ON r.resource_type = u.t AND r.id = u.i)",
    ]
    owners = "r"
    if records:
        # Written by the server (SERVER: no author, client or user), stamped with the create.
        ctes += [
            "c AS (INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, created_by)"
            f" SELECT u.t, u.i, 1, clock.stamp, false, u.head || {stamped} || u.tail, NULL"
            " FROM clock, unnest(CAST(:c_types AS text[]), CAST(:c_ids AS text[]), CAST(:c_heads AS text[]),"
            " CAST(:c_tails AS text[])) AS u(t, i, head, tail) WHERE EXISTS (SELECT FROM r)"
            " ON CONFLICT (resource_type, id) DO NOTHING RETURNING pk, resource_type, id, last_updated, content)",
            "hc AS (INSERT INTO resource_history (resource_pk, resource_type, id, version_id, last_updated, method,"
            " deleted, content, author, author_client, author_user)"
            " SELECT c.pk, c.resource_type, c.id, 1, c.last_updated, 'POST', false, c.content, NULL, NULL, NULL"
            " FROM c)",
        ]
        owners = "(SELECT pk, resource_type, id FROM r UNION ALL SELECT pk, resource_type, id FROM c) AS r"
    for kind, table in SEARCH_TABLES.items():
        names = [c.name for c in table.columns if c.name != "resource_pk"]
        ctes.append(
            f"i_{kind} AS (INSERT INTO {table.name} (resource_pk, {', '.join(names)})"
            f" SELECT r.pk, {', '.join(f'u.{n}' for n in names)} FROM {_recordset(kind, table, owner=True)}"
            f" JOIN {owners} ON r.resource_type = u.resource_type AND r.id = u.owner)"
        )
    if storing:
        ctes += _store_ctes("s_", one=storing_one)
    asked = "".join(f", {question.sql} AS q{n}" for n, question in enumerate(questions))
    if conditions is not None:
        asked += ", (SELECT ok FROM quiet) AS quiet"
    answer = (f"SELECT clock.floor, clock.stamp, r.pk, r.resource_type, r.id{asked} FROM clock LEFT JOIN r ON true"
              if leased else "SELECT pk, resource_type, id FROM r")
    return DriverStatement.from_named("WITH " + ",\n".join(ctes) + "\n" + answer, opens_generic=leased)


def _insert_params(
    items: Sequence[tuple[StoredVersion, dict[str, Any]]], by: Authorship,
    also_indexed: Sequence[tuple[StoredVersion, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """The history and index rows' parameters of `items` (and the index rows of `also_indexed`,
    which the statement inserts by other parameters: a leased insert's records)."""
    params: dict[str, Any] = {
        "types": [v.resource_type for v, _ in items],
        "ids": [v.id for v, _ in items],
        "methods": [v.method for v, _ in items],
        "author": by.author,
        "author_client": by.client,
        "author_user": by.user,
    }
    # No pks yet: each row carries its resource's id, and the statement joins it to the new pk.
    grouped = _rows_by_kind((0, version.resource_type, resource, version.id)
                            for version, resource in [*items, *also_indexed])
    for kind in SEARCH_TABLES:
        params[f"{kind}_rows"] = _json_rows(grouped[kind])
    return params


def leases_in_statement(connection: AsyncConnection) -> bool:
    """Whether a single create on `connection` takes the write lease in its own statement
    (`insert_leased`): PostgreSQL, before anything in the transaction opened the clock."""
    return connection.dialect.name == "postgresql" and not clock.is_open(connection)


# meta.lastUpdated of a version whose stamp the statement chooses, until it has: random, so no
# client can write it elsewhere in a resource and move the cut.
_STAMP_MARK = f'"puente-stamp-{uuid.uuid4().hex}"'


async def insert_leased(
    connection: AsyncConnection,
    resource: dict[str, Any],
    resource_id: str,
    by: Authorship,
    *,
    method: str,
    questions: tuple[WriteQuestion, ...] = (),
) -> tuple[StoredVersion, int | None]:
    """Store one new resource (version 1) in one statement that also takes the transaction's write
    lease and stamps it (`leases_in_statement` must hold). Returns the version, and its pk (None
    when the id was taken). The transaction's clock is open afterwards, for what the hooks write,
    and the answers to `questions` about the resource's type are in its storage.write_memo."""
    statement, params, halves = _leased_insert(resource, resource_id, by, method, questions, None)
    [row] = await fetch(connection, statement, params)
    return _leased_version(connection, row, resource, method, questions, halves)


async def insert_alone(
    connection: AsyncConnection,
    resource: dict[str, Any],
    resource_id: str,
    by: Authorship,
    *,
    method: str,
    questions: tuple[WriteQuestion, ...],
    conditions: tuple[str, ...],
    records: Sequence[dict[str, Any]] = (),
) -> tuple[StoredVersion, int | None] | None:
    """As `insert_leased`, but committed by the statement itself (storage.driver_sql.fetch_alone: no
    BEGIN, no COMMIT, one round trip) if `conditions` (SQL over `:resource_type`, the write
    subscribers' storage.write_events.QuietCreation) all hold in its snapshot. None when it stored
    nothing because one did not, or when the transaction has begun already: the create then goes
    `insert_leased`'s way, in its transaction.

    `records`: new resources of the server's own about the create (its AuditEvent), stored by the
    same statement, with the same stamp, when (and only when) it stores the resource (pk not None),
    so that the one commit keeps both or neither."""
    statement, params, halves = _leased_insert(resource, resource_id, by, method, questions, conditions, records)
    found = await fetch_alone(connection, statement, params)
    if found is None or not found[0]["quiet"]:
        return None
    committed_alone(connection)
    return _leased_version(connection, found[0], resource, method, questions, halves)


def _leased_insert(
    resource: dict[str, Any], resource_id: str, by: Authorship, method: str,
    questions: tuple[WriteQuestion, ...], conditions: tuple[str, ...] | None,
    records: Sequence[dict[str, Any]] = (),
) -> tuple[DriverStatement, dict[str, Any], tuple[str, str]]:
    """The leased insert's statement, its parameters and the content's halves around its stamp
    (and the `records`' ids and halves: `_pg_insert_new_statement`'s `c_` parameters)."""
    unstamped, (head, tail) = _unstamped(resource, resource_id, method)
    noted = [_unstamped(record, str(uuid.uuid4()), "POST") for record in records]
    params = _insert_params([(unstamped, resource)], by, also_indexed=[
        (version, record) for (version, _), record in zip(noted, records, strict=True)]) | clock.LEASE_PARAMS
    params |= {"head": head + '"', "tail": '"' + tail, "resource_type": unstamped.resource_type}
    if noted:
        params |= {"c_types": [v.resource_type for v, _ in noted], "c_ids": [v.id for v, _ in noted],
                   "c_heads": [h + '"' for _, (h, _) in noted], "c_tails": ['"' + t for _, (_, t) in noted]}
    statement = _pg_insert_new_statement(True, questions, conditions=conditions, records=bool(noted))
    return statement, params, (head, tail)


def _unstamped(resource: dict[str, Any], resource_id: str, method: str) -> tuple[StoredVersion, tuple[str, str]]:
    """Version 1 of a new resource whose stamp a statement chooses, and its content's halves
    around meta.lastUpdated (without the quotes)."""
    unstamped = new_version(resource, resource_id, 1, LEASE_EPOCH, method=method, instant=_STAMP_MARK[1:-1])
    assert unstamped.content is not None
    head, tail = unstamped.content.split(_STAMP_MARK, 1)
    return unstamped, (head, tail)


def _leased_version(
    connection: AsyncConnection, row: Mapping[str, Any], resource: dict[str, Any], method: str,
    questions: tuple[WriteQuestion, ...], halves: tuple[str, str],
) -> tuple[StoredVersion, int | None]:
    """What a leased insert stored, from its answer: the transaction's clock opened at its floor,
    the answers to `questions` in its write_memo, the resource's lastUpdated set to its stamp."""
    clock.opened(connection, row["floor"])
    resource_type = resource["resourceType"]
    memo = write_memo.memo(connection)
    for n, question in enumerate(questions):
        memo.setdefault(question.key, {})[resource_type] = question.decode(row[f"q{n}"])
    stamp = utc(row["stamp"])
    instant = fhir_instant(stamp)
    resource["meta"]["lastUpdated"] = instant
    head, tail = halves
    version = StoredVersion(resource_type, resource["id"], 1, stamp, False, f'{head}"{instant}"{tail}', method=method)
    return version, row["pk"]


async def insert_new(
    connection: AsyncConnection,
    items: Sequence[tuple[StoredVersion, dict[str, Any]]],
    by: Authorship,
    *,
    through_driver: bool | None = None,
    then_store: Sequence[VersionWrite] = (),
) -> dict[tuple[str, str], int]:
    """Store new resources (version 1) with history and index rows, skipping any whose id is taken.

    Every writer of new resources comes here (the repository, the audit trail). Returns
    (type, id) -> pk of those stored; a skipped one is simply absent.

    `then_store`: versions of existing resources (`store_many`) recorded by the same statement on
    PostgreSQL, after the new ones on the other paths.
    """
    if not items:
        await store_many(connection, then_store, by, through_driver=through_driver)
        return {}
    if connection.dialect.name == "sqlite" and through_driver is not False:  # prebuilt, one trip
        inserted_pks = await sqlite_writes.insert_new(
            connection, items, lambda v, pk: _history_values(VersionWrite(pk, v, None, fresh=True), by), by.author)
        await store_many(connection, then_store, by)
        return inserted_pks
    if _through_driver(connection, through_driver):
        params = _insert_params(items, by)
        params["stamps"] = [v.last_updated for v, _ in items]
        params["contents"] = [v.content for v, _ in items]
        if then_store:
            params |= _pg_params(then_store, by, "s_")
        storing = _pg_insert_new_statement(storing=bool(then_store), storing_one=_one(then_store))
        inserted = await fetch(connection, storing, params)
        return {(row["resource_type"], row["id"]): row["pk"] for row in inserted}
    stored: dict[tuple[str, str], int] = {}
    writes = []
    for version, resource in items:
        values = {"resource_type": version.resource_type, "id": version.id, "version_id": 1,
                  "last_updated": version.last_updated, "deleted": False, "content": version.content,
                  "created_by": by.author}
        dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = dialect_insert(resources).values(**values).on_conflict_do_nothing(
            index_elements=["resource_type", "id"]).returning(resources.c.pk)
        pk = (await connection.execute(statement)).scalar()
        if pk is not None:
            stored[(version.resource_type, version.id)] = pk
            writes.append(VersionWrite(pk, version, resource, fresh=True))
    await store_many(connection, [*writes, *then_store], by, through_driver=False)
    return stored


async def store(
    connection: AsyncConnection,
    pk: int,
    version: StoredVersion,
    resource: dict[str, Any] | None,
    *,
    fresh: bool,
    by: Authorship,
) -> None:
    """`version` as the current row (unless `fresh`: its insert wrote it) and its history row; index
    rows of `resource` (None: a deletion, no rows) replace the old ones."""
    await store_many(connection, [VersionWrite(pk, version, resource, fresh)], by)
