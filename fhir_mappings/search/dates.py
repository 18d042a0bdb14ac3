"""FHIR date/dateTime/instant values as the range of instants their precision covers.

Shared by indexing and querying: "2024" is [2024-01-01T00:00:00Z, 2024-12-31T23:59:59.999999Z] on both
sides, so the search prefixes reduce to comparisons of range ends. Values without a time zone (dates,
and query values written without one) are read in `tz`: the FHIR spec says the server's local zone.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

DATE_MIN = datetime(1, 1, 1, tzinfo=UTC)
DATE_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_ONE_MICROSECOND = timedelta(microseconds=1)

# Minutes-only times ("T10:00") are not valid FHIR dateTimes but clients send them; accept them.
_DATE_TIME = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class InvalidDate(ValueError):
    """Not a FHIR date, dateTime or instant."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive range of UTC instants; `DATE_MIN`/`DATE_MAX` stand for an open end."""

    low: datetime
    high: datetime


@functools.lru_cache(maxsize=8192)
def parse_date_range(text: str, tz: tzinfo = UTC) -> DateRange:
    """The range covered by a date/dateTime/instant at its precision, in UTC.

    Cached: a Bundle's resources share their timestamps (a visit's seven entries, one clock), and
    the range is immutable.
    """
    m = _DATE_TIME.match(text)
    if m is None:
        raise InvalidDate(f"{text!r} is not a FHIR date/dateTime")
    year, month, day = int(m["year"]), int(m["month"] or 1), int(m["day"] or 1)
    zone = _zone(m["tz"], tz)
    step: timedelta | None
    try:
        if m["hour"] is None:
            if m["tz"] is not None:
                raise InvalidDate(f"{text!r}: a time zone needs a time")
            start = datetime(year, month, day)
            if m["day"]:
                step = timedelta(days=1)
            elif m["month"]:
                step = datetime(year + month // 12, month % 12 + 1, 1) - start if year < 9999 or month < 12 else None
            else:
                step = datetime(year + 1, 1, 1) - start if year < 9999 else None
        else:
            hour, minute = int(m["hour"]), int(m["minute"])
            second = int(m["second"] or 0)
            if second == 60:  # leap second: FHIR allows it, Python does not
                second = 59
            fraction = m["fraction"] or ""
            micro = int((fraction + "000000")[:6])
            start = datetime(year, month, day, hour, minute, second, micro)
            if m["second"] is None:
                step = timedelta(minutes=1)
            elif len(fraction) >= 6:
                step = _ONE_MICROSECOND
            else:
                step = timedelta(microseconds=10 ** (6 - len(fraction)))
    except ValueError as exc:
        raise InvalidDate(f"{text!r}: {exc}") from exc
    low = _to_utc(start, zone)
    high = DATE_MAX if step is None else _to_utc(start, zone, shift=step - _ONE_MICROSECOND)
    return DateRange(low, high)


def period_range(start: str | None, end: str | None, tz: tzinfo = UTC) -> DateRange:
    """A Period: from the low end of `start` to the high end of `end`; a missing end is open."""
    low = parse_date_range(start, tz).low if start else DATE_MIN
    high = parse_date_range(end, tz).high if end else DATE_MAX
    return DateRange(low, high)


def _zone(text: str | None, default: tzinfo) -> tzinfo:
    if text is None:
        return default
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise InvalidDate(f"time zone offset {text!r} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _to_utc(naive: datetime, zone: tzinfo, shift: timedelta = timedelta(0)) -> datetime:
    """Read `naive` in `zone`, add `shift`, convert to UTC, clamped to the representable range."""
    try:
        return (naive.replace(tzinfo=zone) + shift).astimezone(UTC)
    except OverflowError:
        return DATE_MIN if naive.year < 5000 else DATE_MAX
