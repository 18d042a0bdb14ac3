"""$worklist against the hand-computed answers of tests/programme/cohort.py, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from programme import records
from tests.programme import cohort
from tests.programme.conftest import admin_headers, chw_headers

REASON = "https://puente.example.org/fhir/StructureDefinition/worklist-reason"


def reasons(bundle: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for entry in bundle["entry"]:
        codes = []
        for ext in entry["search"]["extension"]:
            assert ext["url"] == REASON
            code = next(p for p in ext["extension"] if p["url"] == "code")["valueCodeableConcept"]
            codes.append(code["coding"][0]["code"])
        out[entry["resource"]["id"]] = codes
    return out


async def worklist(http: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    r = await http.get("/fhir/$worklist", params={"month": cohort.MONTH, **params}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


async def test_a_sector_a_district_a_chw_and_a_care_team(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    assert reasons(await worklist(loaded, admin, location="Location/s1")) == cohort.EXPECTED_S1
    # the district covers the sectors that are partOf it
    district = await worklist(loaded, admin, location="Location/dist")
    assert reasons(district) == cohort.EXPECTED_DISTRICT
    assert district["total"] == 5
    assert reasons(await worklist(loaded, admin, practitioner="Practitioner/chw-b")) == cohort.EXPECTED_S2
    assert reasons(await worklist(loaded, admin, careteam="CareTeam/team-a")) == cohort.EXPECTED_S1
    assert reasons(await worklist(loaded, admin, organization="Organization/fac")) == cohort.EXPECTED_DISTRICT


async def test_each_reason_says_why_in_spanish(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    body = await worklist(loaded, admin_headers(auth_app), location="Location/dist")
    by_id = {e["resource"]["id"]: e["search"]["extension"] for e in body["entry"]}

    def part(pid: str, code: str, name: str) -> Any:
        for ext in by_id[pid]:
            parts = {p["url"]: p for p in ext["extension"]}
            if parts["code"]["valueCodeableConcept"]["coding"][0]["code"] == code:
                return parts.get(name)
        raise AssertionError((pid, code))

    assert part("recien-nacido", "newborn-visits", "detail")["valueString"].startswith("1 de 2 visitas")
    anaemia = part("nino-anemia", "anaemia-follow-up", "detail")["valueString"]
    assert "moderada" in anaemia and "2026-10-15" in anaemia
    assert part("nino-anemia", "anaemia-follow-up", "focus")["valueReference"]["reference"] == "Observation/hb-anemia"
    assert part("nino-referido", "referral-open", "focus")["valueReference"]["reference"] == "ServiceRequest/sr-open"
    assert part("nino-tamizaje", "screening-due", "detail")["valueString"] == "Último tamizaje el 2026-03-01"
    text = part("gestante", "pregnancy-visit", "code")["valueCodeableConcept"]
    assert text["text"] == "Gestante sin visita este mes" and text["coding"][0]["display"].startswith("Pregnant")
    overdue = part("nino-tamizaje", "vaccine-overdue", "detail")["valueString"]
    assert "BCG" in overdue


async def test_paged(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    first = await worklist(loaded, admin, location="Location/dist", _count="2")
    assert [e["resource"]["id"] for e in first["entry"]] == ["gestante", "nino-anemia"]
    assert first["total"] == 5
    seen = [e["resource"]["id"] for e in first["entry"]]
    page = first
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        r = await loaded.get(nxt.removeprefix("https://puente.test"), headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == sorted(cohort.EXPECTED_DISTRICT)


async def test_a_month_replays_what_was_known_then(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    """October, from the same records: the newborn not born yet, the visits of November not made."""
    october = reasons(await worklist(loaded, admin_headers(auth_app), location="Location/dist", month="2026-10"))
    assert october == {
        "nino-anemia": ["anaemia-follow-up", "vaccine-overdue"],  # measured 10-15
        "nino-tamizaje": ["screening-due", "vaccine-overdue"],  # 244 days since 03-01
        "gestante-visitada": ["pregnancy-visit"],  # her visit was on 11-10; "gestante" was seen on 10-20
        "nino-referido": ["vaccine-overdue", "referral-open"],  # sr-open was written on 10-05
    }


async def test_a_chw_sees_only_her_own_patients(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    headers = await chw_headers(loaded, auth_app, "rosa", "Practitioner/chw-b")
    # the whole district, as chw-b: only the patients she follows are read
    assert reasons(await worklist(loaded, headers, location="Location/dist")) == cohort.EXPECTED_S2


async def test_bad_input_is_an_operation_outcome(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    admin = admin_headers(auth_app)
    for params, status in (
        ({}, 400),
        ({"location": "Location/s1", "practitioner": "Practitioner/chw-a"}, 400),
        ({"location": "Patient/x"}, 400),
        ({"location": "Location/"}, 400),
        ({"location": "Location/s1", "month": "2026-13"}, 400),
        ({"location": "Location/s1", "month": "noviembre"}, 400),
        ({"location": "Location/s1", "_count": "-1"}, 400),
        ({"location": "Location/s1", "_count": "100000"}, 400),
        ({"location": "Location/nowhere"}, 404),
    ):
        r = await loaded.get("/fhir/$worklist", params=params, headers=admin)
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert (await loaded.get("/fhir/$worklist", params={"location": "Location/s1"})).status_code == 401


async def test_a_supervisor_sees_her_teams_patients(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    headers = await chw_headers(loaded, auth_app, "lucia", "Practitioner/sup-a", role="supervisor")
    assert reasons(await worklist(loaded, headers, location="Location/dist")) == cohort.EXPECTED_S1


async def test_many_patients_are_read_in_chunks(
    loaded: httpx.AsyncClient, auth_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A programme's 60,000 patients pass the drivers' parameter limits in one IN list: read in chunks."""
    monkeypatch.setattr(records, "CHUNK", 2)
    body = await worklist(loaded, admin_headers(auth_app), location="Location/dist")
    assert reasons(body) == cohort.EXPECTED_DISTRICT
