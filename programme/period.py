"""The period a worklist or an indicator is for: a calendar month, or periodStart..periodEnd (inclusive days)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from fhir_mappings.outcomes import Invalid

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_DAYS = 3 * 366  # a report over more than three years is a mistake, not a question


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.date  # first day
    end: dt.date  # day after the last one

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    def fhir(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.last_day.isoformat()}


def month(value: str, name: str = "month") -> Period:
    """`YYYY-MM` -> that calendar month."""
    m = _MONTH.match(value or "")
    if not m or not 1 <= int(m[2]) <= 12 or not 1900 <= int(m[1]) <= 2999:
        raise Invalid(f"{name} must be a month as YYYY-MM, not {value!r}")
    start = dt.date(int(m[1]), int(m[2]), 1)
    end = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return Period(start, end)


def _day(value: str, name: str) -> dt.date:
    if not _DAY.match(value or ""):
        raise Invalid(f"{name} must be a date as YYYY-MM-DD, not {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{name} is not a calendar date: {value!r}") from exc


def between(start: str | None, end: str | None) -> Period:
    """periodStart and periodEnd (both days included), as $evaluate-measure takes them."""
    if not start or not end:
        raise Invalid("periodStart and periodEnd are both required (YYYY-MM-DD)")
    first, last = _day(start, "periodStart"), _day(end, "periodEnd")
    if last < first:
        raise Invalid("periodEnd is before periodStart")
    if (last - first).days > MAX_DAYS:
        raise Invalid(f"the period is longer than {MAX_DAYS} days")
    return Period(first, last + dt.timedelta(days=1))
