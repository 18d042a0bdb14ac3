"""Puente's own SearchParameters: Flag status and code, Observation interpretation and z-score values,
a Patient's residence; served as SearchParameter resources, listed in the CapabilityStatement, reindexed."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete

from fhir_mappings import fhir_json
from storage.cli import rebuild
from storage.database import create_engine, transaction
from storage.tables import search_number, search_reference, search_token
from tests.programme.conftest import admin_headers

ANAEMIA = "https://puente.example.org/fhir/CodeSystem/anaemia-classification"
GROWTH = "https://puente.example.org/fhir/CodeSystem/growth-classification"
INDICATOR = "https://puente.example.org/fhir/CodeSystem/growth-indicator"
FLAGS = "https://puente.example.org/fhir/CodeSystem/clinical-flag"
OWN = ("status", "code", "interpretation", "value-number", "residence")


async def ids(http: httpx.AsyncClient, headers: dict[str, str], query: str, strict: bool = True) -> list[str]:
    extra = {"Prefer": "handling=strict"} if strict else {}
    r = await http.get(f"/fhir/{query}", headers={**headers, **extra})
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match")


async def test_flags_by_status_and_code(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    old = {
        "resourceType": "Flag",
        "id": "old",
        "status": "inactive",
        "code": {"coding": [{"system": FLAGS, "code": "sam"}]},
        "subject": {"reference": "Patient/nino-referido"},
    }
    r = await loaded.put(
        "/fhir/Flag/old", content=fhir_json.dumps(old), headers={**admin, "Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 201, r.text
    # the rules raised a severe-stunting Flag for nino-referido (lhfa -3.39)
    active = await ids(loaded, admin, "Flag?status=active")
    assert len(active) == 1 and active[0] != "old"
    assert await ids(loaded, admin, "Flag?status=inactive") == ["old"]  # was: every flag, the parameter ignored
    assert await ids(loaded, admin, f"Flag?code={FLAGS}|severe-stunting") == active
    assert await ids(loaded, admin, "Flag?code=sam&status=active") == []
    assert await ids(loaded, admin, "Flag?code:text=desnutrición crónica") == active  # the Spanish text


async def test_anaemia_and_growth_results_are_searchable(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    assert await ids(loaded, admin, f"Observation?interpretation={ANAEMIA}|moderate") == ["hb-anemia"]
    assert await ids(loaded, admin, f"Observation?interpretation={ANAEMIA}|mild,{ANAEMIA}|severe") == []
    anaemic = await ids(loaded, admin, "Observation?interpretation=L&subject:Patient.residence=Location/s1")
    assert anaemic == ["hb-anemia"]
    stunted = await ids(loaded, admin, f"Observation?interpretation={GROWTH}|stunting,{GROWTH}|severe-stunting")
    assert len(stunted) == 2  # the lhfa z-scores of nino-anemia (-2.75) and nino-referido (-3.39)
    severe = await ids(loaded, admin, f"Observation?code={INDICATOR}|lhfa&value-number=lt-3")
    assert severe == await ids(loaded, admin, f"Observation?interpretation={GROWTH}|severe-stunting")
    assert len(await ids(loaded, admin, f"Observation?code={INDICATOR}|wfa&value-number=lt-2")) == 1


async def test_patients_by_residence_and_sector(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    assert await ids(loaded, admin, "Patient?residence=Location/s2") == ["gestante-visitada", "nino-referido"]
    assert len(await ids(loaded, admin, "Patient?residence.partof=Location/dist")) == 6


async def test_served_as_resources_and_in_the_capability_statement(
    loaded: httpx.AsyncClient, auth_app: FastAPI
) -> None:
    admin = admin_headers(auth_app)
    r = await loaded.get("/fhir/SearchParameter/puente-flag-status", headers=admin)
    assert r.status_code == 200, r.text
    sp: dict[str, Any] = r.json()
    assert sp["resourceType"] == "SearchParameter" and sp["code"] == "status" and sp["base"] == ["Flag"]
    assert (await loaded.get("/fhir/SearchParameter/nothing-here", headers=admin)).status_code == 404
    metadata = (await loaded.get("/fhir/metadata")).json()
    by_type = {r["type"]: {p["name"]: p for p in r.get("searchParam", [])} for r in metadata["rest"][0]["resource"]}
    assert by_type["Flag"]["status"]["definition"] == sp["url"]
    assert by_type["Observation"]["interpretation"]["definition"].startswith("https://puente.example.org/")
    assert by_type["Patient"]["residence"]["type"] == "reference"
    operations = {o["name"] for o in metadata["rest"][0]["operation"]}
    assert "worklist" in operations


async def test_reindex_indexes_what_was_stored_before_the_parameters_existed(
    loaded: httpx.AsyncClient, auth_app: FastAPI, database_url: str
) -> None:
    """Data written before these parameters existed has no rows for them: `puente reindex` adds them."""
    admin = admin_headers(auth_app)
    engine = create_engine(database_url)
    try:
        async with transaction(engine, write=True) as connection:
            for table, param in (
                (search_token, "interpretation"),
                (search_token, "status"),
                (search_number, "value-number"),
                (search_reference, "residence"),
            ):
                await connection.execute(delete(table).where(table.c.param == param))
        assert await ids(loaded, admin, f"Observation?interpretation={ANAEMIA}|moderate") == []
        assert await ids(loaded, admin, "Patient?residence=Location/s2") == []
        await rebuild(engine, base_url=None, resource_types=["Observation", "Patient", "Flag"])
    finally:
        await engine.dispose()
    assert await ids(loaded, admin, f"Observation?interpretation={ANAEMIA}|moderate") == ["hb-anemia"]
    assert await ids(loaded, admin, "Patient?residence=Location/s2") == ["gestante-visitada", "nino-referido"]
    assert len(await ids(loaded, admin, "Flag?status=active")) == 1


async def test_referrals_by_business_status(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    """Task has business-status in R4; a ServiceRequest is found through its Task (`_has`)."""
    admin = admin_headers(auth_app)
    tasks = await ids(loaded, admin, "Task?business-status:text=enviada")
    assert tasks == ["task-sr-anemia", "task-sr-done", "task-sr-open"]
    requests = await ids(loaded, admin, "ServiceRequest?_has:Task:focus:business-status:text=enviada")
    assert requests == ["sr-anemia", "sr-done", "sr-open"]
    assert await ids(loaded, admin, "ServiceRequest?_has:Task:focus:status=requested") == ["sr-open"]
