"""FHIR search over the index tables (one module per parameter type), on SQLite and PostgreSQL.

search(connection, principal, query, count=..., cursor=...)    a page of a parsed SearchQuery (engine.py)
find_matches(connection, principal, resource_type, pairs)      (pk, id) of every match: conditional
                                                               create/update/delete and references
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from fhir_mappings.outcomes import Invalid, Issue
from fhir_mappings.search import SearchError, parse_query
from storage import search_rows
from storage.search.clauses import Context
from storage.search.engine import SearchPage, match_conditions, search
from storage.search.found import Found
from storage.tables import resources

__all__ = ["Found", "SearchPage", "find_matches", "search"]


async def find_matches(
    connection: AsyncConnection,
    principal: Principal,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    *,
    limit: int | None = None,
) -> list[tuple[int, str]]:
    """Every current `resource_type` the caller can see that matches `query` (oldest first).

    Criteria that cannot be fully honoured are refused (400) rather than ignored: a conditional
    write whose criteria were silently widened could touch the wrong resource.
    """
    try:
        parsed = parse_query(resource_type, query, base_url=search_rows.base_url())
    except SearchError as exc:
        raise Invalid(f"Invalid search criteria: {exc}") from exc
    if parsed.problems:
        raise Invalid(
            "The search criteria use parameters this server cannot apply",
            issues=[Issue(f"{p.name}: {p.message}", "not-supported") for p in parsed.problems],
        )
    ctx = Context(principal, datetime.now(UTC))
    r = ctx.alias(resources)
    statement = select(r.c.pk, r.c.id).where(*match_conditions(ctx, parsed, r)).order_by(r.c.pk)
    if limit is not None:
        statement = statement.limit(limit)
    return [(row.pk, row.id) for row in (await connection.execute(statement)).all()]
