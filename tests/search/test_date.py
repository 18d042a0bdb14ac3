"""date search (FHIR R4 search.html#date): every prefix, with range semantics at every precision."""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids


def _obs(oid: str, **effective):
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "x"}, **effective}


RESOURCES = [
    _obs("day", effectiveDateTime="2013-01-14"),  # the whole day
    _obs("instant", effectiveDateTime="2013-01-14T10:00:00Z"),
    _obs("month", effectiveDateTime="2013-03"),
    _obs("year", effectiveDateTime="2012"),
    _obs("period", effectivePeriod={"start": "2013-01-10", "end": "2013-01-20"}),
    _obs("open", effectivePeriod={"start": "2013-06-01"}),  # ongoing
    _obs("lima", effectiveDateTime="2013-01-14T22:00:00-05:00"),  # 2013-01-15T03:00Z
    _obs("none"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # eq: the target lies within the search value's range
        ("Observation?date=2013-01-14", "day instant"),
        ("Observation?date=eq2013-01-14", "day instant"),
        ("Observation?date=2013-01", "day instant period lima"),
        ("Observation?date=2013", "day instant month period lima"),
        ("Observation?date=2013-01-14T10:00:00Z", "instant"),
        ("Observation?date=2013-01-14T10:00Z", "instant"),  # minute precision
        ("Observation?date=2013-01-15T03:00:00Z", "lima"),  # zones compared as instants
        # ne
        ("Observation?date=ne2013-01-14", "month year period open lima"),
        # gt / lt: the target's range reaches past / begins before the value's range
        ("Observation?date=gt2013-01-14", "month period open lima"),
        ("Observation?date=lt2013-01-14", "year period"),
        ("Observation?date=gt2013-01-14T09:00:00Z", "day instant month period open lima"),
        # ge / le: also the values within the range
        ("Observation?date=ge2013-01-14", "day instant month period open lima"),
        ("Observation?date=le2013-01-14", "day instant year period"),
        ("Observation?date=ge2013-06", "open"),
        ("Observation?date=le2012-12-31", "year"),
        # sa / eb: starts after / ends before the value's range
        ("Observation?date=sa2013-01-14", "month open lima"),
        ("Observation?date=eb2013-01-14", "year"),
        ("Observation?date=sa2013-01-09", "day instant month period open lima"),
        ("Observation?date=eb2013-01-20", "day instant year lima"),
        # a range between two values (AND)
        ("Observation?date=ge2013-01-01&date=lt2013-02-01", "day instant period lima"),
        # an ongoing period reaches past every later value
        ("Observation?date=ge2030", "open"),
        ("Observation?date=2030", ""),  # eq: the value must contain the whole target range
        # ap: approximately (10% of the distance from now): around a date years ago
        ("Observation?date=ap2013-01-14", "day instant month year period open lima"),
        ("Observation?date:missing=true", "none"),
    ],
)
async def test_date(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)


async def test_lastupdated_on_the_resources_column(loaded):
    body = (await loaded.get("/fhir/Observation", params={"_id": "day"})).json()
    stamp = body["entry"][0]["resource"]["meta"]["lastUpdated"]
    assert await found_ids(loaded, f"Observation?_lastUpdated={stamp}") == {"day"}
    assert "day" not in await found_ids(loaded, f"Observation?_lastUpdated=gt{stamp}")
    assert await found_ids(loaded, "Observation?_lastUpdated=lt2000-01-01") == set()
    assert len(await found_ids(loaded, "Observation?_lastUpdated=ge2000-01-01")) == len(RESOURCES)
    assert await found_ids(loaded, "Observation?_lastUpdated:missing=true") == set()
