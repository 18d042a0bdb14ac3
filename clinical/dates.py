"""Calendar arithmetic shared by the rules: ages and schedule periods.

Month arithmetic follows the CDC CDSi convention: adding months keeps the day of month, and
when that day does not exist in the target month the result is the first day of the next month
(31 Jan + 1 month = 1 Mar). `completed_months` is defined with the same rule so the two agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass


def age_in_days(birth_date: dt.date, on: dt.date) -> int:
    """Whole days from birth to `on`; refuses a date before birth."""
    days = (on - birth_date).days
    if days < 0:
        raise ValueError(f"date {on.isoformat()} is before birth date {birth_date.isoformat()}")
    return days


def add_months(start: dt.date, months: int) -> dt.date:
    total = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    try:
        return dt.date(year, month, start.day)
    except ValueError:
        # Day does not exist in that month: roll to the 1st of the next month (CDSi).
        year2, month2 = (year + 1, 1) if month == 12 else (year, month + 1)
        return dt.date(year2, month2, 1)


def completed_months(birth_date: dt.date, on: dt.date) -> int:
    """Completed calendar months of age on `on` (largest n with birth + n months <= on)."""
    age_in_days(birth_date, on)
    months = (on.year - birth_date.year) * 12 + (on.month - birth_date.month)
    while months > 0 and add_months(birth_date, months) > on:
        months -= 1
    return months


def completed_years(birth_date: dt.date, on: dt.date) -> int:
    return completed_months(birth_date, on) // 12


@dataclass(frozen=True, slots=True)
class Period:
    """A schedule duration: calendar years/months first, then weeks/days (CDSi order)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, int]) -> Period:
        unknown = set(data) - {"years", "months", "weeks", "days"}
        if unknown:
            raise ValueError(f"unknown period fields: {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in data.items()})

    def after(self, start: dt.date) -> dt.date:
        moved = add_months(start, self.years * 12 + self.months)
        return moved + dt.timedelta(weeks=self.weeks, days=self.days)

    def __str__(self) -> str:
        parts = [f"{v} {name}" for name, v in
                 (("years", self.years), ("months", self.months), ("weeks", self.weeks), ("days", self.days))
                 if v]
        return " ".join(parts) or "0 days"
