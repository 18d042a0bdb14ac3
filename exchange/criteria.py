"""Subscription criteria, compiled once per process, and judged without SQL where that is exact.

Parsing a search URL costs more than matching it, and a hundred subscriptions share a handful of
criteria: each distinct (type, criteria, base URL) is parsed once and kept (a criteria text that
changes is a new key, so nothing goes stale).

The common criteria are equalities on what the write just produced: `ServiceRequest?performer=
Organization/x`, `Task?owner=...`, `Observation?_tag=system|code`. For those (every clause a plain
token or reference parameter, or `_id`, with no modifier or chain) `matches` compares the criteria
with the index values of the written resource, computed here by the same extractor and the same
clipping storage used to write its index rows, so the answer is the one SQL would give. Anything
else (strings, dates, chains, `:not`, `:missing` ...) is left to the search engine; the equality
clauses of such criteria still rule out, without SQL, the writes they cannot match.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fhir_mappings.search import SearchError, extract_index_values, parse_query
from fhir_mappings.search.query_ast import (
    Clause,
    CompositeValue,
    DateValue,
    ReferenceValue,
    SearchQuery,
    TokenValue,
)
from fhir_mappings.search.registry import registry
from fhir_mappings.search.unions import stored_as
from storage import search_rows
from storage.search_rows import clip, column_size

MAX_CACHED = 4096  # distinct criteria texts; beyond that the cache starts again (never wrong, only slower)
_DIRECT_TYPES = {"token": TokenValue, "reference": ReferenceValue}
_SIZES = {(kind, column): column_size(kind, column) for kind, columns in {
    "token": ("code", "system"), "reference": ("target_id", "target_type", "target_version", "url")}.items()
    for column in columns}
_ID_SIZE = column_size("reference", "target_id")  # storage clips `_id` values with it too


@dataclass(frozen=True)
class Compiled:
    key: tuple[str, str, str | None]  # (type, criteria, base URL): what it was compiled from
    query: SearchQuery
    direct: bool  # judged by `matches` alone, without SQL
    checkable: tuple[Clause, ...]  # the clauses `matches` judges: all of them when direct
    params: frozenset[str]  # the index parameters `matches` reads
    timeless: bool  # its SQL does not depend on the time it is built (no date `ap`)
    # Keys one of which a written resource's index rows must hold to pass `matches` (see `row_keys`);
    # None: no such shortcut, `matches` is asked of every written resource.
    anchor: frozenset[tuple[str, str, str | None]] | None


_cache: dict[tuple[str, str, str | None], Compiled | None] = {}


def compile_criteria(resource_type: str, criteria: str) -> Compiled | None:
    """The parsed criteria (None if they are no longer a search this server can apply)."""
    key = (resource_type, criteria, search_rows.base_url())
    if key in _cache:
        return _cache[key]
    compiled: Compiled | None
    try:
        query = parse_query(resource_type, parse_qsl(criteria, keep_blank_values=True), base_url=key[2])
    except SearchError:
        compiled = None
    else:
        if query.problems:
            compiled = None
        else:
            checkable = tuple(c for c in query.clauses if _direct(resource_type, c))
            direct = len(checkable) == len(query.clauses)
            params = frozenset(p for c in checkable if c.code != "_id" for p in stored_as(c.code, (resource_type,)))
            timeless = not any(_approximate_date(v) for c in query.clauses for v in c.values)
            compiled = Compiled(key, query, direct, checkable, params, timeless, _anchor(resource_type, checkable))
    if len(_cache) >= MAX_CACHED:
        _cache.clear()
    _cache[key] = compiled
    return compiled


def _approximate_date(value: Any) -> bool:
    """`ap` on a date widens the range by a share of its distance from now (storage.search.date)."""
    if isinstance(value, CompositeValue):
        return any(_approximate_date(v) for v in value.components)
    return isinstance(value, DateValue) and value.prefix == "ap"


def _direct(resource_type: str, clause: Clause) -> bool:
    if clause.chain or clause.modifier is not None:
        return False
    if clause.code == "_id":
        return all(isinstance(v, TokenValue) for v in clause.values)
    wanted = _DIRECT_TYPES.get(clause.type)
    known = registry().params_for(resource_type)
    return (wanted is not None and all(isinstance(v, wanted) for v in clause.values)
            and all(p in known and known[p].type == clause.type for p in stored_as(clause.code, (resource_type,))))


Index = dict[str, list[dict[str, Any]]]  # param -> its rows (token or reference columns)


def index_values(resource_type: str, resource: dict[str, Any], params: frozenset[str]) -> Index:
    """The token and reference index rows of `params` that storage wrote for `resource`."""
    values = extract_index_values(resource, base_url=search_rows.base_url(), skip=_skip(resource_type, params))
    out: Index = {}
    for value in values:
        converted = search_rows.to_row(value)
        if converted is not None:
            out.setdefault(value.param, []).append(converted[1])
    return out


@functools.lru_cache(maxsize=1024)
def _skip(resource_type: str, params: frozenset[str]) -> frozenset[str]:
    return frozenset(registry().params_for(resource_type)) - params


def _anchor(resource_type: str, checkable: tuple[Clause, ...]) -> frozenset[tuple[str, str, str | None]] | None:
    """The keys of the first clause whose every value names a code or a target id: a resource that
    matches holds a row with one of them (a necessary condition, so a shortcut never drops a match)."""
    for clause in checkable:
        if clause.code == "_id":
            continue
        keys: set[tuple[str, str, str | None]] = set()
        for value in clause.values:
            if isinstance(value, TokenValue) and value.code is not None:
                code = clip(value.code, _SIZES["token", "code"])
            elif isinstance(value, ReferenceValue) and value.target_id is not None:
                code = clip(value.target_id, _SIZES["reference", "target_id"])
            else:
                keys.clear()
                break
            keys.update((p, "token" if clause.type == "token" else "reference", code)
                        for p in stored_as(clause.code, (resource_type,)))
        if keys:
            return frozenset(keys)
    return None


def row_keys(index: Index) -> set[tuple[str, str, str | None]]:
    """The anchor keys a written resource's index rows hold."""
    keys: set[tuple[str, str, str | None]] = set()
    for param, rows in index.items():
        for row in rows:
            if "code" in row:
                keys.add((param, "token", row["code"]))
            elif "target_id" in row:
                keys.add((param, "reference", row["target_id"]))
    return keys


def matches(compiled: Compiled, resource_id: str, index: Index) -> bool:
    """Would the search engine find this resource (ignoring access rules) with these criteria? For
    criteria that are not `direct`: could it, judging by their equality clauses alone (if not, no
    SQL need ask)."""
    resource_type = compiled.query.resource_type
    for clause in compiled.checkable:
        if clause.code == "_id":
            ids = {clip(v.code, _ID_SIZE) for v in clause.values if isinstance(v, TokenValue) and v.code is not None}
            if resource_id not in ids:
                return False
            continue
        rows = [row for p in stored_as(clause.code, (resource_type,)) for row in index.get(p, ())]
        test = _token if clause.type == "token" else _reference
        if not any(test(row, value) for value in clause.values for row in rows):
            return False
    return True


def _token(row: dict[str, Any], value: Any) -> bool:
    if value.code is not None and row["code"] != clip(value.code, _SIZES["token", "code"]):
        return False
    if value.system == "":
        return row["system"] is None
    return value.system is None or row["system"] == clip(value.system, _SIZES["token", "system"])


def _reference(row: dict[str, Any], value: Any) -> bool:
    if value.target_id is not None:
        if row["target_id"] != clip(value.target_id, _SIZES["reference", "target_id"]):
            return False
        if value.target_type is not None and row["target_type"] != clip(value.target_type,
                                                                         _SIZES["reference", "target_type"]):
            return False
    elif value.url is not None and row["url"] != clip(value.url, _SIZES["reference", "url"]):
        return False
    return value.version is None or row["target_version"] == clip(value.version, _SIZES["reference", "target_version"])
