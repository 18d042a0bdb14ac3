"""string search (FHIR R4 search.html#string): starts-with, case- and accent-insensitive; :exact, :contains."""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids


def _patient(pid: str, family: str, *given: str, **extra):
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": list(given)}], **extra}


RESOURCES = [
    _patient("eve", "Nuñez", "Eve", address=[{"city": "Ayacucho", "line": ["Jr. Lima 123"]}]),
    _patient("evelyn", "Quispe Nuñez", "Evelyn", "Rosa"),
    _patient("steve", "Mamani", "Steve"),
    _patient("nunez", "NUNEZ", "Jose"),
    _patient("percent", "50%_off", "A,B"),
    {"resourceType": "Patient", "id": "noname"},
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # default: starts with, case-insensitive, on any part (given, family)
        ("Patient?given=eve", "eve evelyn"),
        ("Patient?given=EVE", "eve evelyn"),
        ("Patient?name=eve", "eve evelyn"),
        ("Patient?family=nunez", "eve nunez"),  # "Nuñez" matches "nunez" (accent folded)
        ("Patient?family=Nuñez", "eve nunez"),
        ("Patient?family=quispe", "evelyn"),
        ("Patient?name=rosa", "evelyn"),
        ("Patient?name=eve,steve", "eve evelyn steve"),
        ("Patient?name=eve&name=rosa", "evelyn"),
        ("Patient?address-city=ayac", "eve"),
        ("Patient?address=jr. lima", "eve"),
        # :contains anywhere in the value
        ("Patient?given:contains=eve", "eve evelyn steve"),
        ("Patient?family:contains=nez", "eve evelyn nunez"),
        # :exact: the whole value, case and accents as written
        ("Patient?given:exact=Eve", "eve"),
        ("Patient?given:exact=eve", ""),
        ("Patient?family:exact=Nuñez", "eve"),
        ("Patient?family:exact=Nunez", ""),
        # LIKE wildcards and escaped commas are literal
        ("Patient?family=50%25_", "percent"),
        ("Patient?family=5_", ""),
        ("Patient?given=A\\,B", "percent"),
        ("Patient?family:contains=%25", "percent"),
        # missing
        ("Patient?name:missing=true", "noname"),
    ],
)
async def test_string(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)
