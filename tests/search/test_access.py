"""Search under access rules: scope "s" on the searched type, visibility on matches, chains and includes."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER, Principal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search import parse_query
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from storage.search import find_matches

CLINIC = Principal(
    "clinic",
    client_id="posta",
    organization="Organization/posta",
    scopes=frozenset({"system/ServiceRequest.rs", "system/Patient.rs", "system/Organization.rs"}),
)
NO_PATIENTS = Principal(
    "clinic2", client_id="posta", organization="Organization/posta", scopes=frozenset({"system/ServiceRequest.rs"})
)


def _referral(rid: str, facility: str, patient_id: str):
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Organization/{facility}"}],
    }


RESOURCES = [
    {"resourceType": "Organization", "id": "posta", "name": "Posta"},
    {"resourceType": "Organization", "id": "hospital", "name": "Hospital"},
    {"resourceType": "Patient", "id": "mine", "name": [{"family": "Quispe"}]},
    {"resourceType": "Patient", "id": "theirs", "name": [{"family": "Quispe"}]},
    _referral("r1", "posta", "mine"),
    _referral("r2", "hospital", "theirs"),
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "hb"},
        "subject": {"reference": "Patient/theirs"},
    },
]


@pytest.fixture
async def engine(loaded, database_url):
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def _search(engine: AsyncEngine, principal: Principal, resource_type: str, pairs):
    async with transaction(engine, write=False) as connection:
        repository = FhirRepository(connection, principal)
        page = await repository.search(parse_query(resource_type, pairs), count=50)
        return {f"{f.resource_type}/{f.id}" for f in page.matches}, {f"{f.resource_type}/{f.id}" for f in page.included}


async def test_matches_are_only_what_the_caller_may_see(engine):
    assert await _search(engine, CLINIC, "ServiceRequest", []) == ({"ServiceRequest/r1"}, set())
    assert await _search(engine, CLINIC, "Patient", [("name", "quispe")]) == ({"Patient/mine"}, set())
    assert (await _search(engine, LOCAL_EXPLORER, "Patient", [("name", "quispe")]))[0] == {
        "Patient/mine",
        "Patient/theirs",
    }


async def test_includes_and_chains_reveal_nothing_more(engine):
    _, included = await _search(engine, CLINIC, "ServiceRequest", [("_include", "ServiceRequest:subject")])
    assert included == {"Patient/mine"}
    # the other clinic's referral cannot be found through a chain or a reverse chain either
    matches, _ = await _search(engine, CLINIC, "Patient", [("_has:ServiceRequest:subject:performer", "hospital")])
    assert matches == set()
    matches, _ = await _search(engine, CLINIC, "ServiceRequest", [("subject:Patient.name", "quispe")])
    assert matches == {"ServiceRequest/r1"}
    # an included type the token cannot read is left out, not an error
    _, included = await _search(engine, NO_PATIENTS, "ServiceRequest", [("_include", "ServiceRequest:subject")])
    assert included == set()
    _, included = await _search(engine, CLINIC, "Patient", [("_id", "mine"), ("_revinclude", "*")])
    assert included == {"ServiceRequest/r1"}


async def test_searching_needs_the_search_scope(engine):
    with pytest.raises(Forbidden):
        await _search(engine, NO_PATIENTS, "Patient", [])


async def test_conditional_matching_sees_only_visible_resources(engine):
    async with transaction(engine, write=False) as connection:
        assert await find_matches(connection, CLINIC, "Patient", [("_id", "theirs")]) == []
        assert [i for _, i in await find_matches(connection, CLINIC, "Patient", [("_id", "mine")])] == ["mine"]
        assert len(await find_matches(connection, LOCAL_EXPLORER, "Patient", [("name", "quispe")])) == 2
