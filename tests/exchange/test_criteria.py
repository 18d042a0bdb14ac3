"""Criteria judged without SQL (exchange.criteria) answer exactly what the search engine answers.

Each criteria text below is asked both ways of each stored resource: `matches` on the index values
the write produced, and storage.search.find_matches over the rows in the database.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from auth.principal import LOCAL_EXPLORER
from exchange.criteria import compile_criteria, index_values, matches
from storage import search as search_engine
from storage.database import transaction
from storage.repository import FhirRepository

RESOURCES = [
    {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
     "identifier": [{"system": "https://puente.example.org/referral", "value": "r-1"}],
     "subject": {"reference": "Patient/p1"}, "performer": [{"reference": "Organization/clinic-a"}],
     "meta": {"tag": [{"system": "https://puente.example.org/tags", "code": "urgent"}]}},
    {"resourceType": "ServiceRequest", "status": "completed", "intent": "plan",
     "identifier": [{"value": "no-system"}],
     "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Organization/clinic-b"},
                                                          {"reference": "Practitioner/clinic-a"}],
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "306206005"}]}},
    {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
     "subject": {"reference": "http://testserver/fhir/Patient/p1"},
     "performer": [{"reference": "Organization/clinic-a/_history/2"}]},
]
CRITERIA = [
    "", "status=active", "status=http://hl7.org/fhir/request-status|active", "status=|active",
    "status=http://hl7.org/fhir/request-status|", "status=active,completed", "status=active&intent=plan",
    "performer=Organization/clinic-a", "performer=clinic-a", "performer:Organization=clinic-a",
    "performer:Practitioner=clinic-a", "performer=Organization/clinic-a/_history/2",
    "performer=Organization/clinic-b,Organization/clinic-a", "subject=Patient/p1", "patient=p1",
    "identifier=https://puente.example.org/referral|r-1", "identifier=|no-system", "identifier=r-1",
    "_tag=https://puente.example.org/tags|urgent", "_tag=urgent", "_tag=other|urgent",
    "code=http://snomed.info/sct|306206005", "code=306206005&status=completed", "_id={id0}", "_id={id0},{id2}",
]


async def test_equality_criteria_judged_on_index_values_agree_with_the_search_engine(engine):
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        stored = [(await repository.create(dict(r))).version for r in RESOURCES]
    resources = {v.id: json.loads(v.content or "{}") for v in stored}
    ids = {f"id{n}": v.id for n, v in enumerate(stored)}
    async with engine.connect() as connection:
        for text in CRITERIA:
            criteria = text.format(**ids)
            compiled = compile_criteria("ServiceRequest", criteria)
            assert compiled is not None and compiled.direct, criteria
            found = {i for _, i in await search_engine.find_matches(
                connection, LOCAL_EXPLORER, "ServiceRequest", parse_qsl(criteria, keep_blank_values=True))}
            judged = {i for i, resource in resources.items()
                      if matches(compiled, i, index_values("ServiceRequest", resource, compiled.params))}
            assert judged == found, criteria
    assert len(CRITERIA) > 20


async def test_criteria_beyond_equalities_are_left_to_sql():
    for criteria in ("status:not=active", "subject.name=ana", "authored=ge2020", "identifier:of-type=a|b|c",
                     "performer:missing=true", "_lastUpdated=gt2020", "code:text=referral", "_id:not=x"):
        compiled = compile_criteria("ServiceRequest", criteria)
        assert compiled is not None and not compiled.direct, criteria
    assert compile_criteria("ServiceRequest", "no-such-param=1") is None
