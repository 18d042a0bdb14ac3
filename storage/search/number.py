"""number parameters (FHIR R4 search.html#number), and the range comparison quantities share.

A target is [low, high] (a point when equal; None is an open end of a Range). `eq` means the search
value's implicit range (its precision: 100 -> [99.5, 100.5)) contains the target; gt/lt/ge/le/sa/eb
compare against the value exactly; `ap` overlaps the value widened by 10% (made by the parser).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from fhir_mappings.search.query_ast import NumberValue, Prefix
from storage.search.sql import Columns


def condition(c: Columns, value: Any) -> ColumnElement[bool]:
    assert isinstance(value, NumberValue), value
    return compare(c["low"], c["high"], value.prefix, value.value, value.low, value.high)


def compare(
    low: ColumnElement[Any],
    high: ColumnElement[Any],
    prefix: Prefix,
    value: Decimal,
    range_low: Decimal,
    range_high: Decimal,
) -> ColumnElement[bool]:
    match prefix:
        case "eq":
            return and_(low >= range_low, high < range_high)
        case "ne":
            return or_(low < range_low, high >= range_high, low.is_(None), high.is_(None))
        case "gt":
            return or_(high > value, high.is_(None))
        case "lt":
            return or_(low < value, low.is_(None))
        case "ge":
            return or_(high >= value, high.is_(None))
        case "le":
            return or_(low <= value, low.is_(None))
        case "sa":
            return low > value
        case "eb":
            return high < value
        case "ap":
            return and_(or_(low <= range_high, low.is_(None)), or_(high >= range_low, high.is_(None)))
    raise AssertionError(prefix)
