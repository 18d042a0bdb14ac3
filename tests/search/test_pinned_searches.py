"""Searches that name the resources they reach (`subject=Patient/{child}`, `_id=...`) beside other
parameters: that clause drives and the others are judged on each candidate's own index rows
(storage.search.clauses.clause_conditions). The answers must be the same as any other way of
joining them, modifiers, chains and `_has` included."""

from __future__ import annotations

import pytest

from tests.fixtures.builders import measurement
from tests.search.conftest import found_ids, search

LOINC = "http://loinc.org"


def _observation(oid: str, child: str, code: str, day: str, value: float | None = None, *, by: str | None = None):
    observation = measurement(child, code, 0 if value is None else value, "g/dL", day, oid)
    if value is None:
        del observation["valueQuantity"]
        observation["dataAbsentReason"] = {"text": "not measured"}
    if by is not None:
        observation["performer"] = [{"reference": f"Practitioner/{by}"}]
    return observation


RESOURCES = [
    {"resourceType": "Patient", "id": "kid1", "name": [{"given": ["Ana"]}]},
    {"resourceType": "Patient", "id": "kid2", "name": [{"given": ["Beto"]}]},
    {"resourceType": "Practitioner", "id": "nurse", "name": [{"given": ["Rosa"]}]},
    _observation("h1", "kid1", "718-7", "2026-02-01", 10.5, by="nurse"),
    _observation("h2", "kid1", "718-7", "2026-06-01", 12.0),
    _observation("w1", "kid1", "29463-7", "2026-06-01", 12.0),
    _observation("t1", "kid1", "8310-5", "2026-06-02"),
    _observation("h3", "kid2", "718-7", "2026-06-01", 9.8, by="nurse"),
    _observation("w2", "kid2", "29463-7", "2026-06-01", 13.0),
]


@pytest.mark.parametrize(("url", "expected"), [
    (f"Observation?subject=Patient/kid1&code:not={LOINC}|718-7", {"w1", "t1"}),
    ("Observation?subject=Patient/kid1&value-quantity:missing=true", {"t1"}),
    ("Observation?subject=Patient/kid1&value-quantity:missing=false", {"h1", "h2", "w1"}),
    ("Observation?subject=Patient/kid1&performer:Practitioner.name=Rosa", {"h1"}),
    ("Observation?subject=Patient/kid1&_id=h2,h3", {"h2"}),
    (f"Observation?subject=Patient/kid1,Patient/kid2&code={LOINC}|718-7&value-quantity=lt11", {"h1", "h3"}),
    (f"Observation?code={LOINC}|718-7&performer=Practitioner/nurse&date=ge2026-05-01", {"h3"}),
    (f"Observation?subject:missing=false&code={LOINC}|718-7&performer=Practitioner/nurse", {"h1", "h3"}),
    ("Observation?patient=kid2&subject=Patient/kid2&date=2026-06", {"h3", "w2"}),
    (f"Patient?_id=kid1,kid2&_has:Observation:subject:code={LOINC}|8310-5", {"kid1"}),
    ("Patient?_id=kid1,kid2&name=Beto", {"kid2"}),
])
async def test_a_named_resource_drives_and_the_others_still_decide(loaded, url: str, expected: set[str]):
    assert await found_ids(loaded, url) == expected


async def test_the_total_and_the_pages_come_from_the_same_candidates(loaded):
    body = await search(loaded, f"Observation?subject=Patient/kid1&code={LOINC}|718-7&_total=accurate&_count=1")
    assert body["total"] == 2 and len(body["entry"]) == 1
    assert await found_ids(loaded, f"Observation?subject=Patient/kid1&code={LOINC}|718-7&_count=1") == {"h1", "h2"}
    count = await search(loaded, f"Observation?subject=Patient/kid1&code:not={LOINC}|718-7&_summary=count")
    assert count["total"] == 2
