"""Run a parsed search: one keyset page of matches, their includes, the total, and the paging cursors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ClauseElement, ColumnElement, Executable, FromClause, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles

from auth.principal import Principal
from fhir_mappings.search.query_ast import Clause, DateValue, SearchQuery
from storage import access, clock
from storage.search.clauses import Context, clause_conditions, driving_clause
from storage.search.found import Found
from storage.search.includes import included
from storage.search.sorting import beyond, decode_cursor, encode_cursor, order_by, sort_terms
from storage.search.sql import unindexed
from storage.tables import resources

MAX_INCLUDED = 5000  # per page: a runaway :iterate stops here


@dataclass
class SearchPage:
    matches: list[Found]
    included: list[Found] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    includes_truncated: bool = False  # MAX_INCLUDED reached: some included resources are left out
    watermark: datetime | None = None  # storage.clock: the matches are every one stamped until then


def match_conditions(ctx: Context, query: SearchQuery, r: FromClause) -> list[ColumnElement[bool]]:
    """What a current resource of the searched type must satisfy to match (access rules included)."""
    resource_type = query.resource_type
    driver = driving_clause(ctx, query.clauses)
    of_type = unindexed(r.c.resource_type) if _rows_drive(driver) else r.c.resource_type
    # Candidates a clause names (or a poll's written few): the access rule is asked of each of them,
    # so a clinic's search costs what it names, not its referral history (storage.access_candidates).
    each = ctx.per_candidate or driver is not None
    return [
        of_type == resource_type,
        r.c.deleted.is_(False),
        *access.visible(ctx.principal, resource_type, r, each=each),  # type: ignore[arg-type]
        *clause_conditions(ctx, query.clauses, r, resource_type),
    ]


def _rows_drive(driver: Clause | None) -> bool:
    """Whether the driving clause's index rows name the candidates (a reference to a given resource):
    then the type and the watermark, which every candidate meets, are no index range for SQLite's
    planner (sql.unindexed). Elsewhere SQLite keeps walking (resource_type, last_updated) in page order."""
    return driver is not None and driver.code != "_id"


def _polled_after(query: SearchQuery) -> datetime | None:
    """The instant up to which the query's own `_lastUpdated=gt|sa` clauses exclude every version."""
    bounds = []
    for clause in query.clauses:
        if clause.code != "_lastUpdated" or clause.chain or clause.modifier is not None:
            continue
        values = [v for v in clause.values if isinstance(v, DateValue)]
        if values and len(values) == len(clause.values) and all(v.prefix in ("gt", "sa") for v in values):
            bounds.append(min(v.range.high for v in values))
    return max(bounds) if bounds else None


def _in_time_order(query: SearchQuery) -> bool:
    """Sorted oldest first by `_lastUpdated` (the default): a poll then reads the (resource_type,
    last_updated) index from its `gt` bound and stops at the page's end."""
    return not query.sort or [(k.code, k.descending) for k in query.sort] == [("_lastUpdated", False)]


async def search(
    connection: AsyncConnection,
    principal: Principal,
    query: SearchQuery,
    *,
    count: int,
    cursor: str | None = None,
    now: datetime | None = None,
) -> SearchPage:
    """A page of at most `count` matches after (or before) `cursor`. SearchError for a bad cursor."""
    access.require(principal, query.resource_type, "s")
    polled_after = _polled_after(query)
    ctx = Context(principal, now or datetime.now(UTC), per_candidate=polled_after is not None and _in_time_order(query))
    r = ctx.alias(resources)
    where = match_conditions(ctx, query, r)
    terms = sort_terms(query, r, ctx.alias)
    position = decode_cursor(query, terms, cursor) if cursor else None
    watermark = position.watermark if position is not None and position.watermark else None
    if watermark is None:
        watermark = await clock.watermark(connection)
        # A poll's own `_lastUpdated=gt<W>` takes nothing until W: answer at least W, so a watermark
        # that came out earlier this time (another write just opened) cannot make the next poll repeat.
        watermark = max(watermark, polled_after or watermark)
    rows_drive = _rows_drive(driving_clause(ctx, query.clauses))
    where.append((unindexed(r.c.last_updated) if rows_drive else r.c.last_updated) <= watermark)
    if query.summary == "count" or count == 0:
        if query.total == "none":
            return SearchPage([], watermark=watermark)
        total = await count_matches(connection, r, where, estimate=query.total == "estimate")
        return SearchPage([], total=total, watermark=watermark)

    backwards = position is not None and position.backwards
    columns = [
        r.c.pk,
        r.c.resource_type,
        r.c.id,
        r.c.version_id,
        r.c.last_updated,
        r.c.content,
        *(t.expr.label(t.label) for t in terms),
    ]
    keys: Any
    if any(t.nullable for t in terms):
        # computed sort values (subqueries): order and page on the labelled columns of a subquery
        m = select(*columns).where(*where).subquery("m")
        keys, pk, statement = m.c, m.c.pk, select(m)
    else:
        keys, pk, statement = {t.label: t.expr for t in terms}, r.c.pk, select(*columns).where(*where)
    statement = statement.order_by(*order_by(terms, keys, pk, backwards=backwards)).limit(count + 1)
    if position is not None:
        statement = statement.where(beyond(terms, keys, pk, position))
    rows = list((await connection.execute(statement)).all())
    more = len(rows) > count
    rows = rows[:count]
    if backwards:
        rows.reverse()

    def cursor_at(row: Any, back: bool) -> str:
        values = tuple(row._mapping[t.label] for t in terms)
        return encode_cursor(query, terms, values, row.pk, backwards=back, watermark=watermark)

    page = SearchPage([Found.of(row) for row in rows], watermark=watermark)
    if rows:
        if backwards:
            page.next_cursor = cursor_at(rows[-1], False)
            page.previous_cursor = cursor_at(rows[0], True) if more else None
        else:
            page.next_cursor = cursor_at(rows[-1], False) if more else None
            page.previous_cursor = cursor_at(rows[0], True) if position is not None else None
    page.included = await included(connection, principal, query, page.matches, limit=MAX_INCLUDED)
    page.includes_truncated = len(page.included) >= MAX_INCLUDED
    if query.total in ("accurate", "estimate"):
        page.total = await count_matches(connection, r, where, estimate=query.total == "estimate")
    elif query.total is None and position is None and not more:
        page.total = len(rows)  # the whole result is on this page: the total costs nothing
    return page


def _autocommit(connection: AsyncConnection) -> bool:
    return connection.sync_connection is not None and (
        connection.sync_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )


async def count_matches(
    connection: AsyncConnection, r: FromClause, where: list[ColumnElement[bool]], *, estimate: bool
) -> int:
    if estimate and connection.dialect.name == "postgresql":
        guess = await _planner_estimate(connection, select(r.c.pk).where(*where))
        if guess is not None:
            return guess
    return int((await connection.execute(select(func.count()).select_from(r).where(*where))).scalar_one())


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a statement, with its bound values sent as parameters."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def _planner_estimate(connection: AsyncConnection, statement: Any) -> int | None:
    """PostgreSQL's row estimate for `statement` (no rows are read); None if it cannot be had."""
    try:
        if _autocommit(connection):
            plan = (await connection.execute(_Explain(statement))).scalar_one()
        else:
            async with connection.begin_nested():  # a failure must not abort the caller's transaction
                plan = (await connection.execute(_Explain(statement))).scalar_one()
    except DBAPIError:
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    try:
        return int(plan[0]["Plan"]["Plan Rows"])
    except (LookupError, TypeError, ValueError):
        return None
