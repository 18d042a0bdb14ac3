"""reference parameters (FHIR R4 search.html#reference): Type/id, bare id (any or :Type), absolute URLs
and canonicals (`url|version`), and :identifier (Reference.identifier as a token)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from fhir_mappings.search.query_ast import Modifier, ReferenceValue, TokenValue
from storage.search.sql import Columns, all_of
from storage.search.token import token_match
from storage.search_rows import clip, column_size

_ID = column_size("reference", "target_id")
_TYPE = column_size("reference", "target_type")
_VERSION = column_size("reference", "target_version")
_URL = column_size("reference", "url")


def condition(c: Columns, value: Any, modifier: Modifier | None = None) -> ColumnElement[bool]:
    if isinstance(value, TokenValue):  # :identifier
        return token_match(c, value, code="identifier_value", system="identifier_system")
    assert isinstance(value, ReferenceValue), value
    conditions: list[ColumnElement[bool]] = []
    if value.target_id is not None:
        conditions.append(c["target_id"] == clip(value.target_id, _ID))
    elif value.url is not None:
        conditions.append(c["url"] == clip(value.url, _URL))
    if value.target_type is not None and value.target_id is not None:
        conditions.append(c["target_type"] == clip(value.target_type, _TYPE))
    if value.version is not None:
        conditions.append(c["target_version"] == clip(value.version, _VERSION))
    return all_of(conditions)
