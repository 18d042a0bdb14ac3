"""composite parameters (FHIR R4 search.html#composite), e.g. Observation code-value-quantity.

Each stored combination is one `search_composite` row: `key` repeats the first component's code
(indexed, so candidates are found by it) and `component` is a JSON list with each component's columns
as `storage.search_rows` writes them for that component's own table. The other components are then
matched by the same per-type conditions, written against JSON fields instead of table columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from fhir_mappings.search.query_ast import CompositeValue, ReferenceValue, StringValue, TokenValue, UriValue
from fhir_mappings.search.registry import ParamType, SearchParam
from storage.search import date, number, quantity, reference, string, token, uri
from storage.search.sql import Columns, all_of, json_instant, json_number, json_text
from storage.search_rows import clip, column_size
from storage.tables import SEARCH_TABLES

_NUMERIC = {"low", "high", "canonical_low", "canonical_high"}
_KEY = column_size("composite", "key")


def _component_columns(component: ColumnElement[Any], index: int, kind: ParamType) -> dict[str, ColumnElement[Any]]:
    names = [c.name for c in SEARCH_TABLES[kind].columns if c.name not in ("resource_pk", "resource_type", "param")]
    out: dict[str, ColumnElement[Any]] = {}
    for name in names:
        if kind == "date":
            out[name] = json_instant(component, index, name)
        elif name in _NUMERIC:
            out[name] = json_number(component, index, name)
        else:
            out[name] = json_text(component, index, name)
    return out


def condition(c: Columns, value: Any, param: SearchParam, now: datetime) -> ColumnElement[bool]:
    assert isinstance(value, CompositeValue), value
    conditions: list[ColumnElement[bool]] = []
    key = _key(value.components[0])
    if key is not None:
        conditions.append(c["key"] == clip(key, _KEY))
    for i, (component, part) in enumerate(zip(param.components, value.components, strict=True)):
        columns = _component_columns(c["component"], i, component.type)
        conditions.append(_CONDITIONS[component.type](columns, part, now))
    return all_of(conditions)


def _key(value: Any) -> str | None:
    """What the first component puts in `key` (storage.search_rows.COMPOSITE_KEY_COLUMN), if the value fixes it."""
    if isinstance(value, TokenValue):
        return value.code
    if isinstance(value, StringValue):
        return None  # starts-with: not an equality on the key
    if isinstance(value, ReferenceValue):
        return value.target_id
    if isinstance(value, UriValue):
        return value.value
    return None


_CONDITIONS: dict[str, Callable[[Columns, Any, datetime], ColumnElement[bool]]] = {
    "token": lambda c, v, _now: token.condition(c, v),
    "string": lambda c, v, _now: string.condition(c, v),
    "date": lambda c, v, now: date.condition(c, v, now),
    "number": lambda c, v, _now: number.condition(c, v),
    "quantity": lambda c, v, _now: quantity.condition(c, v),
    "reference": lambda c, v, _now: reference.condition(c, v),
    "uri": lambda c, v, _now: uri.condition(c, v),
}
