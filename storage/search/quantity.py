"""quantity parameters (FHIR R4 search.html#quantity): a number with an optional unit.

With a UCUM unit the comparison runs on the canonical columns (g/dL and g/L, kg and g alike);
with another coded unit on the unit as given (`system|code`, or `||code` matching code or unit);
without a unit on the value alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from fhir_mappings.search.query_ast import QuantityValue
from storage.search.number import compare
from storage.search.sql import Columns
from storage.search_rows import clip, column_size

_CODE = column_size("quantity", "code")
_SYSTEM = column_size("quantity", "system")
_UNIT = column_size("quantity", "unit")


def condition(c: Columns, value: Any) -> ColumnElement[bool]:
    assert isinstance(value, QuantityValue), value
    raw = compare(c["low"], c["high"], value.prefix, value.value, value.low, value.high)
    if value.code is None:
        return raw
    code = clip(value.code, _CODE)
    if value.system is not None:
        by_unit = and_(c["system"] == clip(value.system, _SYSTEM), c["code"] == code)
    else:
        by_unit = or_(c["code"] == code, c["unit"] == clip(value.code, _UNIT))
    if value.canonical_code is None:
        return and_(by_unit, raw)
    assert value.canonical_value is not None and value.canonical_low is not None and value.canonical_high is not None
    canonical = and_(
        c["canonical_code"] == clip(value.canonical_code, _CODE),
        compare(
            c["canonical_low"],
            c["canonical_high"],
            value.prefix,
            value.canonical_value,
            value.canonical_low,
            value.canonical_high,
        ),
    )
    if value.system is not None:
        return canonical
    # `||g/dL`: UCUM rows by their canonical value, and rows whose unit is written without a system
    return or_(canonical, and_(c["canonical_code"].is_(None), by_unit, raw))
