"""Index rows for one resource: the extractor's IndexValues as row dicts for the search_* tables.

`_id` and `_lastUpdated` are not stored here: the resources table has those columns; nor are the
union parameters' rows (Observation's combo-*: fhir_mappings.search.unions). Strings are
clipped to their column's size in characters *and* UTF-8 bytes (so a multi-byte value cannot push
a composite btree entry past PostgreSQL's size limit); queries clip their values the same way
(`clip`), so equality and starts-with still agree on clipped values. Numbers too large or too
small for both databases to hold are left out rather than failing the write.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import String

from fhir_mappings.search import (
    CompositeRow,
    DateRow,
    IndexValue,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
    extract_index_values,
)
from fhir_mappings.search.unions import unions_of
from storage.tables import SEARCH_TABLES

Row = dict[str, Any]
SKIPPED_PARAMS = frozenset({"_id", "_lastUpdated"})
# Beyond this decimal exponent a value is no measurement; SQLite's REAL (and sane comparisons) end there.
_MAX_EXPONENT = 300

_base_url: str | None = None
# Rows another layer derives from a resource of a type, beside the search parameters' own: the
# clinical rules' measurement keys (rules.measurement_keys). Registered when that layer is imported,
# so every writer in a process that serves or reindexes writes them.
DerivedRows = Callable[[dict[str, Any]], list[tuple[str, Row]]]
_derived: dict[str, list[DerivedRows]] = {}


def register_derived_rows(resource_type: str, derive: DerivedRows) -> None:
    """Add `derive(resource)`'s (table kind, row) pairs to the index rows of every `resource_type`
    resource written from now on (once per function)."""
    registered = _derived.setdefault(resource_type, [])
    if derive not in registered:
        registered.append(derive)


def configure(*, base_url: str | None) -> None:
    """Set the server's public base URL, so absolute references to our own resources index as local ones.

    Storage cannot read the settings itself; the app (and `puente reindex`) call this once at start.
    """
    global _base_url
    _base_url = base_url.rstrip("/") if base_url else None


def base_url() -> str | None:
    return _base_url


def _sizes(kind: str) -> dict[str, int]:
    return {c.name: c.type.length for c in SEARCH_TABLES[kind].columns if isinstance(c.type, String) and c.type.length}


_SIZES = {kind: _sizes(kind) for kind in SEARCH_TABLES}


def clip(text: str | None, size: int) -> str | None:
    """`text` cut to `size` characters and `size` UTF-8 bytes (the same cut on the index and query sides).

    NUL characters and lone surrogates, which PostgreSQL refuses in text, are dropped.
    """
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text if len(text) <= size else text[:size]
    # "ignore" drops a character cut in half, and lone surrogates
    return text[:size].encode("utf-8", "surrogatepass")[:size].decode("utf-8", "ignore")


def column_size(kind: str, column: str) -> int:
    return _SIZES[kind][column]


def storable(number: Decimal | None) -> bool:
    return number is None or (number.is_finite() and abs(number.adjusted()) <= _MAX_EXPONENT)


def index_rows(
    pk: int, resource_type: str, resource: dict[str, Any], *, base_url: str | None = None
) -> dict[str, list[Row]]:
    """Rows per table kind ("token", "string", ...) for resource `pk` of `resource_type`."""
    values = extract_index_values(resource, base_url=base_url or _base_url, skip=_not_stored(resource_type))
    out: dict[str, list[Row]] = {}
    for value in values:
        kind_and_row = to_row(value)
        if kind_and_row is None:
            continue
        kind, row = kind_and_row
        row["resource_pk"] = pk
        row["resource_type"] = resource_type
        row["param"] = value.param
        out.setdefault(kind, []).append(row)
    for derive in _derived.get(resource_type, ()):
        for kind, row in derive(resource):
            out.setdefault(kind, []).append({**row, "resource_pk": pk, "resource_type": resource_type})
    return out


@functools.cache
def _not_stored(resource_type: str) -> frozenset[str]:
    """`_id` and `_lastUpdated` are the resources table's own columns; a union parameter's rows are
    its parts' rows (fhir_mappings.search.unions)."""
    return SKIPPED_PARAMS | unions_of(resource_type)


def to_row(value: IndexValue) -> tuple[str, Row] | None:
    """The table kind and column values of one index value (without pk/type/param), or None to skip it."""
    convert = _CONVERTERS.get(type(value))
    return None if convert is None else convert(value)


def _token(v: TokenRow) -> tuple[str, Row] | None:
    s = _SIZES["token"]
    return "token", {
        "system": clip(v.system, s["system"]),
        "code": clip(v.code, s["code"]),
        "text": clip(v.text, s["text"]),
        "type_system": clip(v.type_system, s["type_system"]),
        "type_code": clip(v.type_code, s["type_code"]),
    }


def _string(v: StringRow) -> tuple[str, Row] | None:
    s = _SIZES["string"]
    return "string", {"value": clip(v.value, s["value"]), "value_exact": clip(v.exact, s["value_exact"])}


def _date(v: DateRow) -> tuple[str, Row] | None:
    return "date", {"low": v.low, "high": v.high}


def _reference(v: ReferenceRow) -> tuple[str, Row] | None:
    s = _SIZES["reference"]
    if v.target_id is None and v.url is None and v.identifier_value is None:
        return None
    return "reference", {
        "target_type": clip(v.target_type, s["target_type"]),
        "target_id": clip(v.target_id, s["target_id"]),
        "target_version": clip(v.version, s["target_version"]),
        "url": clip(v.url, s["url"]),
        "identifier_system": clip(v.identifier_system, s["identifier_system"]),
        "identifier_value": clip(v.identifier_value, s["identifier_value"]),
    }


def _quantity(v: QuantityRow) -> tuple[str, Row] | None:
    if not all(storable(n) for n in (v.low, v.high, v.canonical_low, v.canonical_high)):
        return None
    s = _SIZES["quantity"]
    return "quantity", {
        "low": v.low,
        "high": v.high,
        "system": clip(v.system, s["system"]),
        "code": clip(v.code, s["code"]),
        "unit": clip(v.unit, s["unit"]),
        "canonical_code": clip(v.canonical_code, s["canonical_code"]),
        "canonical_low": v.canonical_low,
        "canonical_high": v.canonical_high,
    }


def _number(v: NumberRow) -> tuple[str, Row] | None:
    if not (storable(v.low) and storable(v.high)):
        return None
    return "number", {"low": v.low, "high": v.high}


def _uri(v: UriRow) -> tuple[str, Row] | None:
    return "uri", {"value": clip(v.value, _SIZES["uri"]["value"])}


def _composite(v: CompositeRow) -> tuple[str, Row] | None:
    """One combination as JSON: a list with each component's columns (as in its own table, JSON-safe)."""
    parts: list[Row] = []
    for component in v.components:
        converted = to_row(component)
        if converted is None:
            return None
        _kind, row = converted
        parts.append({k: _json_safe(x) for k, x in row.items() if x is not None})
    key = parts[0].get(COMPOSITE_KEY_COLUMN.get(type(v.components[0]), ""))
    return "composite", {
        "key": clip(key, _SIZES["composite"]["key"]),
        "component": orjson.dumps(parts).decode(),
    }


# The column of a composite's first component that `search_composite.key` repeats, for the index.
COMPOSITE_KEY_COLUMN: dict[type, str] = {
    TokenRow: "code",
    StringRow: "value",
    ReferenceRow: "target_id",
    UriRow: "value",
}


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


_CONVERTERS: dict[type, Callable[[Any], tuple[str, Row] | None]] = {
    TokenRow: _token,
    StringRow: _string,
    DateRow: _date,
    ReferenceRow: _reference,
    QuantityRow: _quantity,
    NumberRow: _number,
    UriRow: _uri,
    CompositeRow: _composite,
}


def iso(value: datetime) -> str:
    """A fixed-width UTC text form that sorts like the instant (for composite date components)."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:" + (
        f"{value.second:02d}.{value.microsecond:06d}"
    )
