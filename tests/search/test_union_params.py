"""Searches on Observation's combo-* parameters read the rows of their two parts (nothing of their own is
stored): the same answers as when each had its own rows, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.search.conftest import found_ids, search

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _observation(oid: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": "Patient/kid"}, **extra}


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


RESOURCES = [
    {"resourceType": "Patient", "id": "kid"},
    _observation("hb", "718-7", valueQuantity=_quantity(9.5, "g/dL")),
    _observation("bp", "85354-9", component=[
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": _quantity(118, "mm[Hg]")},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": _quantity(76, "mm[Hg]")},
    ]),
    _observation("smoker", "72166-2", valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct",
                                                                         "code": "266919005"}]}),
    _observation("lost", "29463-7", dataAbsentReason={"coding": [{"system": ABSENT, "code": "asked-unknown"}]}),
]


async def test_combo_code_finds_the_observation_code_and_the_component_codes(loaded):
    assert await found_ids(loaded, f"Observation?combo-code={LOINC}|718-7") == {"hb"}
    assert await found_ids(loaded, f"Observation?combo-code={LOINC}|8480-6") == {"bp"}
    assert await found_ids(loaded, f"Observation?combo-code={LOINC}|85354-9") == {"bp"}
    assert await found_ids(loaded, f"Observation?code={LOINC}|8480-6") == set()  # a component is not the code
    assert await found_ids(loaded, f"Observation?combo-code:not={LOINC}|8480-6") == {"hb", "smoker", "lost"}


async def test_combo_values_and_their_composite_keep_each_value_with_its_own_code(loaded):
    assert await found_ids(loaded, "Observation?combo-value-quantity=gt100") == {"bp"}
    assert await found_ids(loaded, "Observation?combo-value-quantity=lt10") == {"hb"}
    assert await found_ids(loaded, f"Observation?combo-code-value-quantity={LOINC}|8480-6$gt100") == {"bp"}
    assert await found_ids(loaded, f"Observation?combo-code-value-quantity={LOINC}|8462-4$gt100") == set()
    assert await found_ids(loaded, f"Observation?combo-code-value-quantity={LOINC}|718-7$lt10") == {"hb"}
    assert await found_ids(loaded, "Observation?combo-value-concept=http://snomed.info/sct|266919005") == {"smoker"}
    assert await found_ids(loaded, f"Observation?combo-code-value-concept={LOINC}|72166-2$266919005") == {"smoker"}
    assert await found_ids(loaded, f"Observation?combo-data-absent-reason={ABSENT}|asked-unknown") == {"lost"}


async def test_missing_and_sort_on_a_union(loaded):
    assert await found_ids(loaded, "Observation?combo-value-quantity:missing=true") == {"smoker", "lost"}
    assert await found_ids(loaded, "Observation?combo-value-quantity:missing=false") == {"hb", "bp"}
    body = await search(loaded, "Observation?combo-value-quantity:missing=false&_sort=-combo-value-quantity")
    assert [e["resource"]["id"] for e in body["entry"]] == ["bp", "hb"]
