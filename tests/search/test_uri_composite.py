"""uri and composite search (FHIR R4 search.html#uri, #composite); _profile and _source are uris."""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _vs(vid: str, url: str):
    return {"resourceType": "ValueSet", "id": vid, "status": "active", "url": url}


def _bp(oid: str, systolic: float, diastolic: float):
    def component(code: str, value: float):
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [component("8480-6", systolic), component("8462-4", diastolic)],
    }


def _hb(oid: str, value: float, unit: str):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "effectiveDateTime": "2024-05-01",
    }


RESOURCES = [
    _vs("vs1", "http://acme.org/fhir/ValueSet/123"),
    _vs("vs2", "http://acme.org/fhir/ValueSet/124"),
    _vs("vs3", "http://acme.org/fhir/"),
    _vs("vs4", "urn:oid:1.2.3.4"),
    _bp("bp1", 120, 80),
    _bp("bp2", 150, 95),
    _hb("hb1", 10.5, "g/dL"),
    _hb("hb2", 125, "g/L"),
    {
        "resourceType": "Observation",
        "id": "edd",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "11778-8"}]},
        "valueDateTime": "2024-05-10",
    },
    {
        "resourceType": "Patient",
        "id": "profiled",
        "meta": {
            "profile": ["http://puente.example.org/fhir/StructureDefinition/chw-child"],
            "source": "https://chw-app.example.org/device/17",
        },
    },
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ValueSet?url=http://acme.org/fhir/ValueSet/123", "vs1"),
        ("ValueSet?url=http://acme.org/fhir/ValueSet/12", ""),  # uris are not prefixes by default
        ("ValueSet?url:below=http://acme.org/fhir/", "vs1 vs2 vs3"),
        ("ValueSet?url:below=http://acme.org/fhir/ValueSet/12", "vs1 vs2"),
        ("ValueSet?url:above=http://acme.org/fhir/ValueSet/123/_history/5", "vs1 vs3"),
        ("ValueSet?url=urn:oid:1.2.3.4", "vs4"),
        ("Patient?_profile=http://puente.example.org/fhir/StructureDefinition/chw-child", "profiled"),
        ("Patient?_source=https://chw-app.example.org/device/17", "profiled"),
        ("Patient?_source:below=https://chw-app.example.org/", "profiled"),
        # composites: both parts from the same component
        (f"Observation?component-code-value-quantity={LOINC}|8480-6$gt140", "bp2"),
        (f"Observation?component-code-value-quantity={LOINC}|8480-6$lt140", "bp1"),
        ("Observation?component-code-value-quantity=8462-4$gt90", "bp2"),
        ("Observation?component-code-value-quantity=8480-6$gt90", "bp1 bp2"),
        ("Observation?component-code-value-quantity=8462-4$gt100", ""),  # 150 is systolic, not diastolic
        (f"Observation?component-code-value-quantity=8480-6$gt130|{UCUM}|mm[Hg]", "bp2"),
        (f"Observation?code-value-quantity={LOINC}|718-7$lt11|{UCUM}|g/dL", "hb1"),
        (f"Observation?code-value-quantity={LOINC}|718-7$lt110|{UCUM}|g/L", "hb1"),
        (f"Observation?code-value-quantity={LOINC}|718-7$ge12|{UCUM}|g/dL", "hb2"),
        (f"Observation?code-value-quantity={LOINC}|718-7$10.5,{LOINC}|718-7$125", "hb1 hb2"),
        ("Observation?code-value-quantity=8480-6$120", ""),
        ("Observation?code-value-date=11778-8$2024-05", "edd"),
        ("Observation?code-value-date=11778-8$gt2024-05-10", ""),
        ("Observation?code-value-date=11778-8$ge2024-05-10", "edd"),
        ("Observation?code-value-date=718-7$2024-05", ""),
    ],
)
async def test_uri_and_composite(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)
