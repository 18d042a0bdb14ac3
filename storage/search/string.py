"""string parameters (FHIR R4 search.html#string): starts-with by default, :exact, :contains.

Both sides are normalised (case and accents folded), so "Nuñez" finds "nunez". :exact also
compares the normalised column, which lets it use the same index as starts-with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from fhir_mappings.search.query_ast import Modifier, StringValue
from storage.search.sql import Columns, all_of, contains, starts_with
from storage.search_rows import clip, column_size

_VALUE = column_size("string", "value")
_EXACT = column_size("string", "value_exact")


def condition(c: Columns, value: Any, modifier: Modifier | None = None) -> ColumnElement[bool]:
    assert isinstance(value, StringValue), value
    normalised = clip(value.value, _VALUE) or ""
    if modifier == "exact":
        return all_of([c["value"] == normalised, c["value_exact"] == clip(value.exact, _EXACT)])
    if modifier == "contains":
        return contains(c["value"], normalised)
    return starts_with(c["value"], normalised)
