"""`_sort` and keyset paging: the ORDER BY of a search, and cursors that resume after (or before) a row.

A page is ordered by the sort keys and then by pk, so the order is total. A cursor records the sort
values and pk of the row it continues from; the next page is "rows after that position", a range the
indexes answer, whatever was inserted, updated or deleted meanwhile (no OFFSET to drift).
Without `_sort` results come in lastUpdated order (oldest first): an incremental pull sees changes
in the order they happened, and the (resource_type, last_updated, pk) index gives that order.

Per FHIR, a resource with several values sorts by its lowest when ascending and its highest when
descending; one with none sorts last either way.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import ColumnElement, FromClause, and_, false, func, literal, or_, select, tuple_

from fhir_mappings.search.errors import SearchError
from fhir_mappings.search.query_ast import SearchQuery, SortKey
from fhir_mappings.search.unions import stored_as
from storage.search.sql import Aliases, one_or_many
from storage.tables import SEARCH_TABLES

Kind = Literal["instant", "decimal", "text"]

# (lowest column, highest column, kind) per parameter type
_SORT_COLUMNS: dict[str, tuple[str, str, Kind]] = {
    "date": ("low", "high", "instant"),
    "number": ("low", "high", "decimal"),
    "quantity": ("low", "high", "decimal"),
    "string": ("value", "value", "text"),
    "token": ("code", "code", "text"),
    "reference": ("target_id", "target_id", "text"),
    "uri": ("value", "value", "text"),
}


@dataclass(frozen=True)
class SortTerm:
    label: str
    expr: ColumnElement[Any]
    descending: bool
    kind: Kind
    nullable: bool


def sort_terms(query: SearchQuery, r: FromClause, alias: Aliases) -> list[SortTerm]:
    if not query.sort:
        return [SortTerm("k0", r.c.last_updated, False, "instant", False)]
    return [_term(f"k{i}", key, query.resource_type, r, alias) for i, key in enumerate(query.sort)]


def signature(query: SearchQuery) -> str:
    """What a cursor must have been made for: the same sort."""
    return ",".join(("-" if k.descending else "") + k.code for k in query.sort) or "_lastUpdated"


def _term(label: str, key: SortKey, resource_type: str, r: FromClause, alias: Aliases) -> SortTerm:
    if key.code == "_id":
        return SortTerm(label, r.c.id, key.descending, "text", False)
    if key.code == "_lastUpdated":
        return SortTerm(label, r.c.last_updated, key.descending, "instant", False)
    lowest, highest, kind = _SORT_COLUMNS[key.param.type]
    idx = alias(SEARCH_TABLES[key.param.type])
    aggregate = func.max(idx.c[highest]) if key.descending else func.min(idx.c[lowest])
    # The candidate's own index rows, by its pk alone: its index rows all carry its type, and naming
    # the type too let a planner without statistics read the parameter's value index instead, whose
    # (resource_type, param) range holds every resource's values, e.g. every Observation's dates
    # (tests/storage/test_plans_without_statistics.py).
    expr = (
        select(aggregate)
        .where(idx.c.resource_pk == r.c.pk, one_or_many(idx.c.param, stored_as(key.code, (resource_type,))))
        .scalar_subquery()
    )
    return SortTerm(label, expr, key.descending, kind, True)


# ---- ordering and keyset conditions over the labelled columns of the match subquery -----------------


@dataclass(frozen=True)
class Position:
    values: tuple[Any, ...]
    pk: int
    backwards: bool  # "the page before this row" (a previous link) rather than after it
    watermark: datetime | None = None  # the first page's (storage.clock): every page answers as of it


def order_by(terms: list[SortTerm], columns: Any, pk: ColumnElement[Any], *, backwards: bool) -> list[Any]:
    out = []
    for term in terms:
        column = columns[term.label]
        descending = term.descending != backwards
        ordered = column.desc() if descending else column.asc()
        if term.nullable:  # missing values last, and first when walking backwards
            ordered = ordered.nulls_first() if backwards else ordered.nulls_last()
        out.append(ordered)
    pk_descending = terms[-1].descending != backwards
    out.append(pk.desc() if pk_descending else pk.asc())
    return out


def beyond(terms: list[SortTerm], columns: Any, pk: ColumnElement[Any], position: Position) -> ColumnElement[bool]:
    """Rows strictly after `position` in the page order (before it, for a backwards position)."""
    back = position.backwards
    pk_descending = terms[-1].descending != back
    directions = [t.descending != back for t in terms]
    if not any(t.nullable for t in terms) and all(d == pk_descending for d in directions):
        # one direction, no NULLs: a row comparison, which PostgreSQL turns into an index range
        left = tuple_(*(columns[t.label] for t in terms), pk)
        # typed binds: SQLite compares instants as text, in the column type's own format
        right = tuple_(
            *(literal(v, columns[t.label].type) for t, v in zip(terms, position.values, strict=True)),
            literal(position.pk, pk.type),
        )
        return left < right if pk_descending else left > right
    alternatives: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for term, descending, value in zip(terms, directions, position.values, strict=True):
        column = columns[term.label]
        nulls_first = back and term.nullable
        alternatives.append(and_(*equal, _strictly_after(column, descending, nulls_first, value, term.nullable)))
        equal.append(column.is_(None) if value is None else column == value)
    alternatives.append(and_(*equal, pk < position.pk if pk_descending else pk > position.pk))
    return or_(*alternatives)


def _strictly_after(
    column: ColumnElement[Any], descending: bool, nulls_first: bool, value: Any, nullable: bool
) -> ColumnElement[bool]:
    if value is None:
        return column.is_not(None) if nulls_first else false()
    compared = column < value if descending else column > value
    if nullable and not nulls_first:
        return or_(compared, column.is_(None))
    return compared


# ---- cursors -------------------------------------------------------------------------------------------


def encode_cursor(
    query: SearchQuery,
    terms: list[SortTerm],
    values: tuple[Any, ...],
    pk: int,
    *,
    backwards: bool,
    watermark: datetime | None = None,
) -> str:
    payload: dict[str, Any] = {
        "s": signature(query),
        "v": [_encode_value(term.kind, value) for term, value in zip(terms, values, strict=True)],
        "p": pk,
        "b": 1 if backwards else 0,
    }
    if watermark is not None:
        payload["w"] = _utc(watermark).isoformat()
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(query: SearchQuery, terms: list[SortTerm], text: str) -> Position:
    """The position a cursor stands for; SearchError when it is malformed or made for another sort."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("s") != signature(query):
            raise SearchError("the paging cursor belongs to another search: start again from the first page")
        values = payload["v"]
        pk = payload["p"]
        if not isinstance(values, list) or len(values) != len(terms) or not isinstance(pk, int):
            raise ValueError("bad shape")
        decoded = tuple(_decode_value(term, value) for term, value in zip(terms, values, strict=True))
        watermark = payload.get("w")
        if watermark is not None:
            watermark = datetime.fromisoformat(watermark)
            if watermark.tzinfo is None:
                raise ValueError("naive watermark")
        return Position(decoded, pk, bool(payload.get("b")), watermark)
    except SearchError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError) as exc:
        raise SearchError("the paging cursor is not valid", param="_cursor") from exc


def _encode_value(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "instant":
        return _utc(value).isoformat()
    if kind == "decimal":
        return str(value)
    return str(value)


def _decode_value(term: SortTerm, value: Any) -> Any:
    if value is None:
        if not term.nullable:
            raise ValueError("null for a required sort value")
        return None
    if not isinstance(value, str):
        raise ValueError("sort values are strings")
    if term.kind == "instant":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive instant")
        return parsed
    if term.kind == "decimal":
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError("not finite")
        return number
    return value


def _utc(value: datetime) -> datetime:
    from storage.versions import utc

    return utc(value)
