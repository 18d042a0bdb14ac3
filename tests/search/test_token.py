"""token search (FHIR R4 search.html#token), examples from the specification, as sets of ids."""

from __future__ import annotations

import pytest

from tests.search.conftest import found_ids, ids

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACME = "http://acme.org/patient"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def _patient(pid: str, **extra):
    return {"resourceType": "Patient", "id": pid, **extra}


def _condition(cid: str, *codings, text=None, **extra):
    code = {"coding": [{k: v for k, v in (("system", s), ("code", c), ("display", d)) if v} for s, c, d in codings]}
    if text:
        code["text"] = text
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/p1"}, "code": code, **extra}


RESOURCES = [
    _patient(
        "p1",
        gender="male",
        active=True,
        identifier=[
            {"system": ACME, "value": "2345"},
            {
                "type": {"coding": [{"system": V2, "code": "MR"}], "text": "Medical record"},
                "system": "urn:mrn",
                "value": "446053",
            },
        ],
        telecom=[{"system": "phone", "value": "+51 999 111 222"}],
    ),
    _patient("p2", gender="female", active=False, identifier=[{"system": "urn:other", "value": "2345"}]),
    _patient("p3", gender="female", identifier=[{"value": "9999"}]),
    _patient("p4"),
    _condition("c1", ("http://acme.org/conditions/codes", "ha125", "Headache"), text="Dolor de cabeza"),
    _condition("c2", (SNOMED, "25064002", "Headache"), ("http://acme.org/conditions/codes", "ha125", None)),
    _condition("c3", (None, "ha125", None)),
    _condition("c4", (SNOMED, "386661006", "Fever")),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # code only: any system
        ("Patient?gender=male", "p1"),
        ("Patient?gender=female", "p2 p3"),
        ("Patient?gender=male,female", "p1 p2 p3"),  # OR
        ("Patient?active=true", "p1"),
        ("Patient?active=false", "p2"),
        # identifiers: system|value, value alone, |value (no system), system|
        (f"Patient?identifier={ACME}|2345", "p1"),
        ("Patient?identifier=2345", "p1 p2"),
        ("Patient?identifier=|9999", "p3"),
        ("Patient?identifier=|2345", ""),
        ("Patient?identifier=urn:other|", "p2"),
        (f"Patient?identifier:of-type={V2}|MR|446053", "p1"),
        (f"Patient?identifier:of-type={V2}|MR|2345", ""),
        ("Patient?telecom=phone|+51 999 111 222".replace("+", "%2B"), "p1"),
        # codings
        ("Condition?code=http://acme.org/conditions/codes|ha125", "c1 c2"),
        ("Condition?code=ha125", "c1 c2 c3"),
        ("Condition?code=|ha125", "c3"),
        (f"Condition?code={SNOMED}|", "c2 c4"),
        (f"Condition?code={SNOMED}|25064002,{SNOMED}|386661006", "c2 c4"),
        # :text matches display and CodeableConcept.text (starts with, case- and accent-insensitive)
        ("Condition?code:text=headache", "c1 c2"),
        ("Condition?code:text=DOLOR", "c1"),
        ("Patient?identifier:text=medical", "p1"),
        # :not: resources without a matching value, including those without any value
        ("Patient?gender:not=male", "p2 p3 p4"),
        ("Patient?gender:not=male&gender:not=female", "p4"),  # AND
        ("Condition?code:not=ha125", "c4"),
        # :missing
        ("Patient?gender:missing=true", "p4"),
        ("Patient?gender:missing=false", "p1 p2 p3"),
        ("Patient?active:missing=true", "p3 p4"),
        # AND of two parameters
        ("Patient?gender=female&active=false", "p2"),
    ],
)
async def test_token(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)
