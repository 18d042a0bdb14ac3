"""A parsed search clause as a SQL condition on a `resources` row (alias), chains and `_has` included.

Every parameter becomes a semi-join on the resource's pk against its index table, scoped by
(resource_type, param) so PostgreSQL walks the (resource_type, param, value..., resource_pk) index:
  plain        r.pk IN (SELECT resource_pk FROM search_x WHERE type, param, value OR value ...)
  :not         NOT EXISTS (... same, correlated on r.pk)          (resources without a matching value)
  :missing     NOT EXISTS / IN on (type, param) alone
  `_id`, `_lastUpdated`  the resources table's own columns
Beside a clause that names the resources it reaches (`subject=Patient/x`), and in a poll, the other
parameters are judged per candidate instead: EXISTS over the candidate's own index rows, found by
its pk (`clause_conditions`, `_per_candidate`).
A forward chain (`subject:Patient.name=x`) joins search_reference to the target resources and
recurses on them; a reverse chain (`_has:Observation:subject:code=x`) asks for a referrer that
satisfies the rest. Resources reached through a chain must be visible to the caller too, so a
search cannot reveal what the caller may not read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, exists, false, or_, select, true

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search.query_ast import ChainLink, Clause, MissingValue, ReferenceValue, ReverseChain, TokenValue
from fhir_mappings.search.unions import stored_as
from storage import access
from storage.search import composite, date, number, quantity, reference, string, token, uri
from storage.search.sql import Aliases, any_of, fenced, one_or_many
from storage.search_rows import clip, column_size
from storage.tables import SEARCH_TABLES, resources, search_reference

_ID = column_size("reference", "target_id")


@dataclass
class Context:
    """What compiling one search needs besides the query: the caller, the time (for `ap`), table aliases."""

    principal: Principal
    now: datetime
    alias: Aliases = field(default_factory=Aliases)
    # Probe each candidate's own index rows instead of joining on the parameter's values (see
    # `per_candidate`): set for a poll, whose candidates are the few resources written since.
    per_candidate: bool = False


def clause_conditions(
    ctx: Context, clauses: Sequence[Clause], r: FromClause, resource_type: str
) -> list[ColumnElement[bool]]:
    """The conditions `clauses` put on `r`, a resources alias holding `resource_type` rows.

    When one clause names the resources it reaches (`pins`: `subject=Patient/{child}`, `_id=...`),
    it drives and every other clause is judged on each candidate's own index rows (`_per_candidate`),
    as in a poll. Left as joins, on tables never analysed PostgreSQL rescanned the other parameter's
    whole value range for each candidate: a child's hemoglobin history read every hemoglobin of the
    database (`code=718-7`) once per Observation of the child, 171 ms where a probe by pk costs
    ~0.01 ms. The shape is then fixed by the query, with statistics or without; the pinned set is
    what it costs."""
    driver = driving_clause(ctx, clauses)  # None in a poll, where `clause_condition` probes every clause
    return [
        clause_condition(ctx, clause, r, resource_type, probe=driver is not None and clause is not driver)
        for clause in clauses
    ]


def driving_clause(ctx: Context, clauses: Sequence[Clause]) -> Clause | None:
    """The clause whose matches are the candidates the others are judged on (`clause_conditions`)."""
    return None if ctx.per_candidate else next((clause for clause in clauses if pins(clause)), None)


def pins(clause: Clause) -> bool:
    """Whether `clause` names the very resources it matches: `_id`, or a reference whose every value
    names its target (an id or a URL), without a chain, `:not` or `:missing`."""
    if clause.chain or clause.modifier in ("not", "missing"):
        return False
    if clause.code == "_id":
        return True
    return clause.type == "reference" and all(
        isinstance(value, ReferenceValue) and (value.target_id is not None or value.url is not None)
        for value in clause.values
    )


def clause_condition(
    ctx: Context, clause: Clause, r: FromClause, resource_type: str, *, probe: bool = False
) -> ColumnElement[bool]:
    """The condition `clause` puts on `r`, a resources alias holding `resource_type` rows; `probe`:
    judged on the candidate's own index rows (a chain is a join whatever is asked)."""
    if (probe or ctx.per_candidate) and not clause.chain:
        return _final(ctx, clause, r, (resource_type,), probe=True)
    return _along(ctx, clause, clause.chain, r, (resource_type,))


def visible_among(principal: Principal, types: tuple[str, ...], table: FromClause) -> list[ColumnElement[bool]]:
    """access.visible for a row that may be of any of `types`."""
    per_type = {t: access.visible(principal, t, table) for t in types}  # type: ignore[arg-type]
    if not any(per_type.values()):
        return []
    if len(types) == 1:
        return per_type[types[0]]
    return [or_(*(and_(table.c.resource_type == t, *conditions) for t, conditions in per_type.items()))]


def _along(
    ctx: Context, clause: Clause, chain: tuple[Any, ...], r: FromClause, types: tuple[str, ...]
) -> ColumnElement[bool]:
    if not chain:
        return _final(ctx, clause, r, types)
    link = chain[0]
    if isinstance(link, ChainLink):
        s, t = ctx.alias(search_reference), ctx.alias(resources)
        target_types = _searchable(ctx.principal, link.target_types, f"{clause.name}")
        inner = _along(ctx, clause, chain[1:], t, target_types)
        referrers = (
            select(s.c.resource_pk)
            .join(t, and_(t.c.resource_type == s.c.target_type, t.c.id == s.c.target_id))
            .where(
                one_or_many(s.c.resource_type, types),
                s.c.param == link.code,
                one_or_many(s.c.target_type, target_types),
                t.c.deleted.is_(False),
                inner,
                *visible_among(ctx.principal, target_types, t),
            )
        )
        return r.c.pk.in_(referrers)
    assert isinstance(link, ReverseChain)
    _searchable(ctx.principal, (link.source_type,), f"{clause.name}")
    s, src = ctx.alias(search_reference), ctx.alias(resources)
    inner = _along(ctx, clause, chain[1:], src, (link.source_type,))
    return exists().where(
        s.c.target_type == r.c.resource_type,
        s.c.target_id == r.c.id,
        s.c.resource_type == link.source_type,
        s.c.param == link.reference_code,
        src.c.pk == s.c.resource_pk,
        src.c.deleted.is_(False),
        inner,
        *visible_among(ctx.principal, (link.source_type,), src),
    )


def _searchable(principal: Principal, types: tuple[str, ...], parameter: str) -> tuple[str, ...]:
    """The types a chain or `_has` may reach: those the token may search. A chain that reaches none
    is refused (403): its answer would tell the caller about data its scopes keep from it."""
    allowed = tuple(t for t in types if principal.allows(t, "s"))
    if not allowed:
        raise Forbidden(
            f"{parameter} searches {' or '.join(types)}, which this access token's scopes do not allow searching"
        )
    return allowed


def _final(
    ctx: Context, clause: Clause, r: FromClause, types: tuple[str, ...], *, probe: bool = False
) -> ColumnElement[bool]:
    if clause.code == "_id":
        return _on_id(clause, r)
    if clause.code == "_lastUpdated":
        if clause.modifier == "missing":
            return _constant_missing(clause)
        columns = {"low": r.c.last_updated, "high": r.c.last_updated}
        return any_of([date.condition(columns, v, ctx.now, point=True) for v in clause.values])
    table = SEARCH_TABLES[clause.type]

    def scope(alias: FromClause) -> list[ColumnElement[bool]]:
        return [one_or_many(alias.c.resource_type, types), one_or_many(alias.c.param, stored_as(clause.code, types))]

    if clause.modifier == "missing":
        found: list[ColumnElement[bool]] = []
        for value in clause.values:
            assert isinstance(value, MissingValue)
            idx = ctx.alias(table)
            if probe:  # on the candidate's own rows, as `_per_candidate`
                own = _own_rows(idx, r)
                present = exists(select(own.c.resource_pk).where(*scope(own)))
                found.append(~present if value.missing else present)
            elif value.missing:
                found.append(~exists().where(idx.c.resource_pk == r.c.pk, *scope(idx)))
            else:
                found.append(r.c.pk.in_(select(idx.c.resource_pk).where(*scope(idx))))
        return any_of(found)
    idx = ctx.alias(table)
    if probe:
        return _per_candidate(ctx, clause, idx, r, scope)
    matched = any_of([_value(ctx, clause, idx.c, v) for v in clause.values])
    if clause.modifier == "not":
        return ~exists().where(idx.c.resource_pk == r.c.pk, *scope(idx), matched)
    return r.c.pk.in_(select(idx.c.resource_pk).where(*scope(idx), matched))


def _per_candidate(
    ctx: Context, clause: Clause, idx: FromClause, r: FromClause, scope: Callable[[FromClause], list[Any]]
) -> ColumnElement[bool]:
    """`clause` on the candidate `r`, judged on `r`'s own index rows, fetched by its pk alone.

    OFFSET 0 keeps PostgreSQL from merging the rows' subquery into the EXISTS and from pushing the
    value conditions into it: on tables never analysed it joined on the parameter's values instead,
    scanning every referral of the facility again for each resource written since the poll's
    `_lastUpdated` (a nested loop filtering on pk). This way the shape is fixed by the query: the
    (resource_type, last_updated) range drives, and each candidate costs one probe of the
    `resource_pk` index."""
    own = _own_rows(idx, r)
    matched = any_of([_value(ctx, clause, own.c, v) for v in clause.values])
    found = select(own.c.resource_pk).where(*scope(own), matched)
    return ~exists(found) if clause.modifier == "not" else exists(found)


def _own_rows(idx: FromClause, r: FromClause) -> FromClause:
    """The index rows of `idx`'s table that belong to the candidate `r`, found by its pk alone."""
    return fenced(idx, idx.c.resource_pk == r.c.pk, name=f"own_{idx.name}")  # type: ignore[attr-defined,no-any-return]


def _value(ctx: Context, clause: Clause, c: Any, value: Any) -> ColumnElement[bool]:
    match clause.type:
        case "token":
            return token.condition(c, value)
        case "string":
            return string.condition(c, value, clause.modifier)
        case "date":
            return date.condition(c, value, ctx.now)
        case "number":
            return number.condition(c, value)
        case "quantity":
            return quantity.condition(c, value)
        case "reference":
            return reference.condition(c, value, clause.modifier)
        case "uri":
            return uri.condition(c, value, clause.modifier)
        case "composite":
            return composite.condition(c, value, clause.param, ctx.now)
    raise AssertionError(clause.type)


def _on_id(clause: Clause, r: FromClause) -> ColumnElement[bool]:
    if clause.modifier == "missing":
        return _constant_missing(clause)
    ids = [clip(v.code, _ID) for v in clause.values if isinstance(v, TokenValue) and v.code is not None]
    if not ids:
        return false() if clause.modifier != "not" else true()
    condition = one_or_many(r.c.id, ids)  # type: ignore[arg-type]
    return ~condition if clause.modifier == "not" else condition


def _constant_missing(clause: Clause) -> ColumnElement[bool]:
    """Every resource has an id and a lastUpdated: `:missing=true` matches none, `false` all."""
    return any_of([false() if v.missing else true() for v in clause.values if isinstance(v, MissingValue)])
