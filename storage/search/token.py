"""token parameters (FHIR R4 search.html#token): codes, codings, identifiers, booleans; :text, :of-type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from fhir_mappings.search.query_ast import OfTypeValue, TextValue, TokenValue
from storage.search.sql import Columns, all_of, starts_with
from storage.search_rows import clip, column_size

_CODE = column_size("token", "code")
_SYSTEM = column_size("token", "system")
_TEXT = column_size("token", "text")
_TYPE_SYSTEM = column_size("token", "type_system")
_TYPE_CODE = column_size("token", "type_code")


def condition(c: Columns, value: Any) -> ColumnElement[bool]:
    if isinstance(value, TextValue):
        return starts_with(c["text"], clip(value.text, _TEXT) or "")
    if isinstance(value, OfTypeValue):
        return all_of(
            [
                c["code"] == clip(value.value, _CODE),
                c["type_code"] == clip(value.type_code, _TYPE_CODE),
                c["type_system"] == clip(value.type_system, _TYPE_SYSTEM),
            ]
        )
    assert isinstance(value, TokenValue), value
    return token_match(c, value)


def token_match(c: Columns, value: TokenValue, *, code: str = "code", system: str = "system") -> ColumnElement[bool]:
    """`code`, `system|code`, `|code` (no system) or `system|` (any code of the system)."""
    conditions: list[ColumnElement[bool]] = []
    if value.code is not None:
        conditions.append(c[code] == clip(value.code, _CODE))
    if value.system == "":
        conditions.append(c[system].is_(None))
    elif value.system is not None:
        conditions.append(c[system] == clip(value.system, _SYSTEM))
    return all_of(conditions)
