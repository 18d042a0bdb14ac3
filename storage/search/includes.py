"""`_include` and `_revinclude` (FHIR R4 search.html#include), with `:iterate` and wildcards.

Both walk search_reference from the resources already in the page: forward to what they reference
(`_include=Observation:subject`), backward to what references them (`_revinclude=Observation:subject`).
Only resources the caller may read come along: types without the "r" scope are skipped, and the
visibility rules filter each type, so an include never reveals more than a read would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search.query_ast import Include, SearchQuery
from storage import access
from storage.search.found import FOUND_COLUMNS, Found
from storage.search.sql import all_of, one_or_many
from storage.tables import resources, search_reference

MAX_ITERATIONS = 4  # rounds of :iterate after the first


async def included(
    connection: AsyncConnection, principal: Any, query: SearchQuery, matches: Sequence[Found], *, limit: int
) -> list[Found]:
    """The resources `query`'s includes add to `matches` (none of them twice), at most `limit`."""
    if not (query.includes or query.revincludes) or not matches:
        return []
    seen = {(f.resource_type, f.id) for f in matches}
    out: list[Found] = []
    frontier: Sequence[Found] = matches
    includes, revincludes = query.includes, query.revincludes
    for _ in range(MAX_ITERATIONS + 1):
        targets = await _referenced(connection, includes, frontier) if includes else set()
        referrers = await _referring(connection, revincludes, frontier) if revincludes else set()
        new = await _load(connection, principal, targets, referrers, seen, limit - len(out))
        out.extend(new)
        includes = tuple(i for i in includes if i.iterate)
        revincludes = tuple(i for i in revincludes if i.iterate)
        if not new or not (includes or revincludes) or len(out) >= limit:
            break
        frontier = new
    return out


async def _referenced(
    connection: AsyncConnection, includes: Iterable[Include], frontier: Sequence[Found]
) -> set[tuple[str, str]]:
    s = search_reference
    pks = [f.pk for f in frontier]
    alternatives: list[ColumnElement[bool]] = []
    for inc in includes:
        conditions: list[ColumnElement[bool]] = []
        if inc.source_type is not None:
            conditions.append(s.c.resource_type == inc.source_type)
        if inc.code is not None:
            conditions.append(s.c.param == inc.code)
        if inc.target_type is not None:
            conditions.append(s.c.target_type == inc.target_type)
        alternatives.append(all_of(conditions))
    statement = (
        select(s.c.target_type, s.c.target_id)
        .distinct()
        .where(s.c.resource_pk.in_(pks), s.c.target_id.is_not(None), s.c.target_type.is_not(None), or_(*alternatives))
    )
    return {(row.target_type, row.target_id) for row in await connection.execute(statement)}


async def _referring(
    connection: AsyncConnection, revincludes: Iterable[Include], frontier: Sequence[Found]
) -> set[int]:
    s = search_reference
    by_type: dict[str, list[str]] = defaultdict(list)
    for f in frontier:
        by_type[f.resource_type].append(f.id)
    alternatives: list[ColumnElement[bool]] = []
    for inc in revincludes:
        for target_type, ids in by_type.items():
            if inc.target_type is not None and inc.target_type != target_type:
                continue
            conditions = [s.c.target_type == target_type, one_or_many(s.c.target_id, ids)]
            if inc.source_type is not None:
                conditions.append(s.c.resource_type == inc.source_type)
            if inc.code is not None:
                conditions.append(s.c.param == inc.code)
            alternatives.append(and_(*conditions))
    if not alternatives:
        return set()
    statement = select(s.c.resource_pk).distinct().where(or_(*alternatives))
    return {row.resource_pk for row in await connection.execute(statement)}


async def _load(
    connection: AsyncConnection,
    principal: Any,
    targets: set[tuple[str, str]],
    referrers: set[int],
    seen: set[tuple[str, str]],
    limit: int,
) -> list[Found]:
    r = resources
    wanted: dict[str, list[ColumnElement[bool]]] = defaultdict(list)
    ids_by_type: dict[str, list[str]] = defaultdict(list)
    for resource_type, resource_id in targets:
        if (resource_type, resource_id) not in seen:
            ids_by_type[resource_type].append(resource_id)
    for resource_type, ids in ids_by_type.items():
        wanted[resource_type].append(one_or_many(r.c.id, ids))
    if referrers:
        statement = select(r.c.resource_type, r.c.pk).where(r.c.pk.in_(sorted(referrers)), r.c.deleted.is_(False))
        pks_by_type: dict[str, list[int]] = defaultdict(list)
        for row in await connection.execute(statement):
            pks_by_type[row.resource_type].append(row.pk)
        for resource_type, pks in pks_by_type.items():
            wanted[resource_type].append(r.c.pk.in_(pks))
    out: list[Found] = []
    for resource_type in sorted(wanted):
        if limit - len(out) <= 0:
            break
        try:
            access.require(principal, resource_type, "r")
        except Forbidden:
            continue  # the caller may not read this type: leave it out rather than fail the search
        statement = (
            select(*FOUND_COLUMNS)
            .where(
                r.c.resource_type == resource_type,
                r.c.deleted.is_(False),
                or_(*wanted[resource_type]),
                *access.visible(principal, resource_type, r, each=True),
            )
            .order_by(r.c.pk)
            .limit(limit - len(out))
        )
        for found in map(Found.of, await connection.execute(statement)):
            key = (found.resource_type, found.id)
            if key not in seen:
                seen.add(key)
                out.append(found)
    return out
