"""Date precision ranges (FHIR search spec 3.1.1.4.7 "date": a value stands for the range its precision covers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fhir_mappings.search.dates import DATE_MAX, DATE_MIN, DateRange, InvalidDate, parse_date_range, period_range

from .helpers import utc


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", utc(2024, 1, 1), utc(2024, 12, 31, 23, 59, 59, 999999)),
        ("2024-02", utc(2024, 2, 1), utc(2024, 2, 29, 23, 59, 59, 999999)),
        ("2023-12", utc(2023, 12, 1), utc(2023, 12, 31, 23, 59, 59, 999999)),
        ("2013-01-14", utc(2013, 1, 14), utc(2013, 1, 14, 23, 59, 59, 999999)),
        ("2013-01-14T10:00", utc(2013, 1, 14, 10), utc(2013, 1, 14, 10, 0, 59, 999999)),
        ("2013-01-14T10:00:00Z", utc(2013, 1, 14, 10), utc(2013, 1, 14, 10, 0, 0, 999999)),
        ("2013-01-14T10:00:00.5Z", utc(2013, 1, 14, 10, 0, 0, 500000), utc(2013, 1, 14, 10, 0, 0, 599999)),
        ("2013-01-14T10:00:00.123456Z", utc(2013, 1, 14, 10, 0, 0, 123456), utc(2013, 1, 14, 10, 0, 0, 123456)),
        ("2013-01-14T10:00:00.123456789Z", utc(2013, 1, 14, 10, 0, 0, 123456), utc(2013, 1, 14, 10, 0, 0, 123456)),
        ("2013-01-14T10:00:00+05:00", utc(2013, 1, 14, 5), utc(2013, 1, 14, 5, 0, 0, 999999)),
        ("2013-01-14T10:00:00-05:00", utc(2013, 1, 14, 15), utc(2013, 1, 14, 15, 0, 0, 999999)),
        ("9999", utc(9999, 1, 1), DATE_MAX),
        ("2016-12-31T23:59:60Z", utc(2016, 12, 31, 23, 59, 59), utc(2016, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_precision_ranges(text: str, low: datetime, high: datetime) -> None:
    assert parse_date_range(text) == DateRange(low, high)


def test_values_without_zone_are_read_in_the_given_zone() -> None:
    lima = timezone(timedelta(hours=-5))
    assert parse_date_range("2024-03-01", lima) == DateRange(utc(2024, 3, 1, 5), utc(2024, 3, 2, 4, 59, 59, 999999))
    assert parse_date_range("2024-03-01T10:00:00", lima).low == utc(2024, 3, 1, 15)
    # an explicit zone wins over the default
    assert parse_date_range("2024-03-01T10:00:00Z", lima).low == utc(2024, 3, 1, 10)


def test_named_zone_follows_daylight_saving() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    assert parse_date_range("2024-01-15", madrid).low == utc(2024, 1, 14, 23)
    assert parse_date_range("2024-07-15", madrid).low == utc(2024, 7, 14, 22)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24",
        "2024-13",
        "2024-02-30",
        "2024-01-01T25:00:00Z",
        "2024-01-01Z",
        "2024-01-01T10:00:00+15:00",
        "2024/01/01",
        "2024-01-01 10:00",
        "0000",
        "2024-1-1",
        "10:00:00",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidDate):
        parse_date_range(text)


def test_periods_are_open_where_an_end_is_missing() -> None:
    assert period_range("2024-01", None) == DateRange(utc(2024, 1, 1), DATE_MAX)
    assert period_range(None, "2024-01") == DateRange(DATE_MIN, utc(2024, 1, 31, 23, 59, 59, 999999))
    assert period_range("2024-01-01T08:00:00Z", "2024-01-01T09:30:00Z") == DateRange(
        utc(2024, 1, 1, 8), utc(2024, 1, 1, 9, 30, 0, 999999)
    )
