"""reference search, chains and reverse chains (FHIR R4 search.html#reference, #chaining, #has)."""

from __future__ import annotations

import pytest

from tests.conftest import BASE
from tests.search.conftest import found_ids, ids

MRN = "http://acme.org/fhir/identifier/mrn"
LOINC = "http://loinc.org"


def _obs(oid: str, subject: dict | None, code: str = "718-7", **extra):
    body = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        **extra,
    }
    if subject is not None:
        body["subject"] = subject
    return body


RESOURCES = [
    {"resourceType": "Organization", "id": "org1", "name": "Posta La Esperanza"},
    {"resourceType": "Organization", "id": "org2", "name": "Hospital Regional"},
    {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Quispe", "given": ["Peter"]}],
        "managingOrganization": {"reference": "Organization/org1"},
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "name": [{"family": "Mamani", "given": ["Rosa"]}],
        "managingOrganization": {"reference": "Organization/org2"},
    },
    {"resourceType": "Group", "id": "p1", "type": "person", "actual": True},  # same id, another type
    {"resourceType": "Location", "id": "loc1", "name": "Peter's street"},
    _obs("o1", {"reference": "Patient/p1"}),
    _obs("o2", {"reference": "Patient/p2"}, code="29463-7"),
    _obs("o3", {"reference": "Group/p1"}),
    _obs("o4", {"reference": f"{BASE}/fhir/Patient/p2"}),  # absolute, on our own base
    _obs("o5", {"reference": "http://other.org/fhir/Patient/p1"}),  # another server's patient
    _obs("o6", {"identifier": {"system": MRN, "value": "123456"}, "display": "by identifier only"}),
    _obs("o7", {"reference": "Patient/p1/_history/1"}),
    _obs("o8", None, hasMember=[{"reference": "Observation/o1"}]),
    {
        "resourceType": "DiagnosticReport",
        "id": "dr1",
        "status": "final",
        "code": {"text": "hb"},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/o1"}],
    },
    {
        "resourceType": "DiagnosticReport",
        "id": "dr2",
        "status": "final",
        "code": {"text": "hb"},
        "subject": {"reference": "Location/loc1"},
    },
    {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "HH"},
        "subject": {"reference": "Patient/p2"},
    },
    {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "status": "completed",
        "questionnaire": "http://acme.org/Questionnaire/q1|2.0",
    },
    {
        "resourceType": "QuestionnaireResponse",
        "id": "qr2",
        "status": "completed",
        "questionnaire": "http://acme.org/Questionnaire/q1|3.0",
    },
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Observation?subject=Patient/p1", "o1 o7"),
        ("Observation?subject:Patient=p1", "o1 o7"),
        ("Observation?subject=p1", "o1 o3 o7"),  # a bare id: any type
        ("Observation?subject:Group=p1", "o3"),
        ("Observation?patient=p1", "o1 o7"),  # patient = subject.where(resolve() is Patient)
        ("Observation?subject=Patient/p2", "o2 o4"),  # absolute on our base is local
        (f"Observation?subject={BASE}/fhir/Patient/p2", "o2 o4"),
        ("Observation?subject=http://other.org/fhir/Patient/p1", "o5"),
        ("Observation?subject=Patient/p1/_history/1", "o7"),
        ("Observation?subject=Patient/p1,Patient/p2", "o1 o2 o4 o7"),
        (f"Observation?subject:identifier={MRN}|123456", "o6"),
        ("Observation?subject:identifier=123456", "o6"),
        ("Observation?subject:missing=true", "o8"),
        ("Observation?has-member=Observation/o1", "o8"),
        # canonical: url, with or without its version
        ("QuestionnaireResponse?questionnaire=http://acme.org/Questionnaire/q1", "qr1 qr2"),
        ("QuestionnaireResponse?questionnaire=http://acme.org/Questionnaire/q1|2.0", "qr1"),
        # chains: forward, typed and untyped, multi-level, with modifiers
        ("DiagnosticReport?subject:Patient.name=peter", "dr1"),
        ("DiagnosticReport?subject.name=peter", "dr1 dr2"),  # Patient and Location both have name
        ("Observation?subject:Patient.name=rosa", "o2 o4"),
        ("Observation?subject:Patient.organization.name=posta", "o1 o7"),
        ("Observation?subject:Patient.organization=Organization/org2", "o2 o4"),
        ("Observation?subject:Patient.name:exact=Peter", "o1 o7"),
        ("Observation?subject:Patient.name:exact=peter", ""),
        ("DiagnosticReport?result.code=http://loinc.org|718-7", "dr1"),
        ("DiagnosticReport?result.subject:Patient.name=peter", "dr1"),
        ("Observation?subject:Patient.name=peter&subject:Patient.name=quispe", "o1 o7"),
        # reverse chains
        ("Patient?_has:Observation:patient:code=718-7", "p1 p2"),
        ("Patient?_has:Observation:patient:code=29463-7", "p2"),
        ("Patient?_has:Encounter:subject:status=finished", "p2"),
        ("Patient?_has:Observation:subject:_has:DiagnosticReport:result:status=final", "p1"),
        ("Organization?_has:Patient:organization:_has:Observation:subject:code=29463-7", "org2"),
        ("Patient?_has:Observation:subject:code:not=718-7", "p2"),
        # _has and a plain parameter
        ("Patient?_has:Observation:patient:code=718-7&name=rosa", "p2"),
    ],
)
async def test_reference(loaded, query, expected):
    assert await found_ids(loaded, query) == ids(expected)
