"""date parameters (FHIR R4 search.html#date): ranges compared by their ends, at every precision.

A target is the range [low, high] its precision (or Period) covers; the search value is the range
[sl, sh] of its own precision. Following the spec:
  eq  the search range contains the target        ne  it does not
  gt  the target reaches past sh                  lt  the target begins before sl
  ge  gt, or contained (= high > sh or low >= sl) le  lt, or contained (= low < sl or high <= sh)
  sa  the target starts after sh                  eb  the target ends before sl
  ap  the target overlaps the search range widened by 10% of its distance from now
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from fhir_mappings.search.dates import DATE_MAX, DATE_MIN
from fhir_mappings.search.query_ast import DateValue
from storage.search.sql import Columns

AP_FRACTION = 0.1


def condition(c: Columns, value: Any, now: datetime, *, point: bool = False) -> ColumnElement[bool]:
    """`point`: low and high are one column (an instant such as lastUpdated), which allows simpler SQL."""
    assert isinstance(value, DateValue), value
    low, high = c["low"], c["high"]
    sl, sh = value.range.low, value.range.high
    match value.prefix:
        case "eq":
            return low.between(sl, sh) if point else and_(low >= sl, low <= sh, high <= sh)
        case "ne":
            return or_(low < sl, high > sh)
        case "gt":
            return high > sh
        case "lt":
            return low < sl
        case "ge":
            return low >= sl if point else or_(high > sh, low >= sl)
        case "le":
            return low <= sh if point else or_(low < sl, high <= sh)
        case "sa":
            return low > sh
        case "eb":
            return high < sl
        case "ap":
            wl, wh = approximate(sl, sh, now)
            return low.between(wl, wh) if point else and_(low <= wh, high >= wl)
    raise AssertionError(value.prefix)


def approximate(low: datetime, high: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The search range widened on both sides by 10% of the gap between now and the value."""
    middle = low + (high - low) / 2
    widen = abs(now - middle) * AP_FRACTION
    return max(DATE_MIN, _minus(low, widen)), min(DATE_MAX, _plus(high, widen))


def _minus(value: datetime, delta: timedelta) -> datetime:
    try:
        return value - delta
    except OverflowError:
        return DATE_MIN


def _plus(value: datetime, delta: timedelta) -> datetime:
    try:
        return value + delta
    except OverflowError:
        return DATE_MAX
