"""uri parameters (FHIR R4 search.html#uri): equality, :below (a prefix of the stored uri), :above."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from fhir_mappings.search.query_ast import Modifier, UriValue
from storage.search.sql import Columns, one_or_many, starts_with
from storage.search_rows import clip, column_size

_VALUE = column_size("uri", "value")


def condition(c: Columns, value: Any, modifier: Modifier | None = None) -> ColumnElement[bool]:
    assert isinstance(value, UriValue), value
    text = clip(value.value, _VALUE) or ""
    if modifier == "below":
        return starts_with(c["value"], text)
    if modifier == "above":
        # stored uris that are the value or one of its ancestors: an IN list the index answers
        return one_or_many(c["value"], ancestors(text))
    return c["value"] == text


def ancestors(uri: str) -> list[str]:
    """`uri` and every prefix of it ending at a path boundary (with and without the trailing '/')."""
    found = [uri]
    scheme_end = uri.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    cut = uri.rstrip("/").rfind("/")
    while cut >= start and cut > 0:
        prefix = uri[:cut]
        if prefix.endswith(":/") or prefix.endswith(":"):
            break
        found.extend((prefix, prefix + "/"))
        cut = prefix.rfind("/")
    return list(dict.fromkeys(found))
