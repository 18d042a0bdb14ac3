"""number and quantity search (FHIR R4 search.html#number, #quantity): implicit precision, prefixes, units.

Hemoglobin in g/dL and g/L compare after UCUM canonicalisation, as do kg/g and cm/mm.
"""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids

UCUM = "http://unitsofmeasure.org"
HB = {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}


def _risk(rid: str, probability):
    return {
        "resourceType": "RiskAssessment",
        "id": rid,
        "status": "final",
        "subject": {"reference": "Patient/x"},
        "prediction": [{"probabilityDecimal": probability}],
    }


def _obs(oid: str, value: dict, code=None):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": code or HB,
        "subject": {"reference": "Patient/x"},
        "valueQuantity": value,
    }


def _q(value, code=None, unit=None, system=UCUM, comparator=None):
    q = {"value": value}
    if code:
        q["code"] = code
        q["system"] = system
    if unit:
        q["unit"] = unit
    if comparator:
        q["comparator"] = comparator
    return q


RESOURCES = [
    _risk("r100", 100),
    _risk("r99-7", 99.7),
    _risk("r100-4", 100.4),
    _risk("r100-5", 100.5),
    _risk("r0-8", 0.8),
    _obs("hb-dl", _q(10.5, "g/dL", "g/dL")),
    _obs("hb-l", _q(115, "g/L", "g/L")),
    _obs("hb-low", _q(7.2, "g/dL", "g/dL")),
    _obs("hb-unitless", _q(10.5)),
    _obs("hb-unit-text", _q(10.5, unit="g/dL")),
    _obs("hb-other-system", _q(10.5, "gdl", "g/dL", system="http://acme.org/units")),
    _obs("weight-kg", _q(12.4, "kg", "kg"), code={"text": "weight"}),
    _obs("weight-g", _q(9800, "g", "g"), code={"text": "weight"}),
    _obs("len-cm", _q(85.2, "cm", "cm"), code={"text": "length"}),
    _obs("len-mm", _q(852, "mm", "mm"), code={"text": "length"}),
    _obs("lt-5", _q(5, "g/dL", "g/dL", comparator="<"), code={"text": "below detection"}),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # number: the value's precision is its range ([99.5, 100.5) for "100")
        ("RiskAssessment?probability=100", "r100 r99-7 r100-4"),
        ("RiskAssessment?probability=100.0", "r100"),
        ("RiskAssessment?probability=1e2", "r100 r99-7 r100-4 r100-5"),  # [50, 150)
        ("RiskAssessment?probability=gt100", "r100-4 r100-5"),
        ("RiskAssessment?probability=ge100", "r100 r100-4 r100-5"),
        ("RiskAssessment?probability=lt100", "r99-7 r0-8"),
        ("RiskAssessment?probability=le100", "r100 r99-7 r0-8"),
        ("RiskAssessment?probability=ne100", "r100-5 r0-8"),
        ("RiskAssessment?probability=ap100", "r100 r99-7 r100-4 r100-5"),
        ("RiskAssessment?probability=sa100", "r100-4 r100-5"),
        ("RiskAssessment?probability=eb0.9", "r0-8"),
        ("RiskAssessment?probability=0.8", "r0-8"),
        # quantity, UCUM: g/dL and g/L compare after canonicalisation
        (f"Observation?value-quantity=10.5|{UCUM}|g/dL", "hb-dl"),
        (f"Observation?value-quantity=105|{UCUM}|g/L", "hb-dl"),
        (f"Observation?value-quantity=lt11|{UCUM}|g/dL", "hb-dl hb-low lt-5"),
        (f"Observation?value-quantity=lt110|{UCUM}|g/L", "hb-dl hb-low lt-5"),
        (f"Observation?value-quantity=ge11|{UCUM}|g/dL", "hb-l"),
        (f"Observation?value-quantity=gt100|{UCUM}|g/L", "hb-dl hb-l"),
        # kg and g, cm and mm
        (f"Observation?value-quantity=12.4|{UCUM}|kg", "weight-kg"),
        (f"Observation?value-quantity=12400|{UCUM}|g", "weight-kg"),
        (f"Observation?value-quantity=gt10000|{UCUM}|g", "weight-kg"),
        (f"Observation?value-quantity=lt10|{UCUM}|kg", "weight-g"),
        (f"Observation?value-quantity=852|{UCUM}|mm", "len-cm len-mm"),
        (f"Observation?value-quantity=85.2|{UCUM}|cm", "len-cm len-mm"),
        # ||code: code or unit, any system
        ("Observation?value-quantity=10.5||g/dL", "hb-dl hb-unit-text hb-other-system"),
        ("Observation?value-quantity=10.5|http://acme.org/units|gdl", "hb-other-system"),
        # no unit: the number alone
        ("Observation?value-quantity=10.5", "hb-dl hb-unitless hb-unit-text hb-other-system"),
        ("Observation?value-quantity=lt6", "lt-5"),
        ("Observation?value-quantity=gt9000", "weight-g"),
        # a comparator makes the stored value a half-open range
        (f"Observation?value-quantity=lt3|{UCUM}|g/dL", "lt-5"),
        (f"Observation?value-quantity=5|{UCUM}|g/dL", ""),
    ],
)
async def test_number_and_quantity(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)
