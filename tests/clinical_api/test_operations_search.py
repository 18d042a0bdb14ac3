"""What needs a patient's stored records found by search (subject/patient + code): the operations'
output, weight-for-length and SAM by WHZ on write, pregnancy from the stored record, stored
Immunizations. Over HTTP on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from clinical import growth_zscores
from tests.clinical_api.resources import (
    FHIR_JSON,
    HEAD,
    LENGTH,
    LOINC,
    MUAC,
    WEIGHT,
    evidence,
    get,
    hb,
    immunization,
    named,
    observation,
    part,
    parts,
    patient,
    put,
    reasons,
    v3,
)

BORN = dt.date(2024, 1, 10)
INDICATORS = ["wfa", "lhfa", "wflh", "bfa", "hcfa", "acfa"]


async def child_with_two_visits(client) -> None:
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "11.0", when="2024-09-01"))
    await put(client, observation("w1", "kid", WEIGHT, "7.00", "kg", when="2024-09-01"))
    await put(client, observation("l1", "kid", LENGTH, "66.0", "cm", when="2024-09-01"))
    await put(client, hb("hb2", "kid", "9.0", when="2025-03-02T09:30:00-05:00"))
    await put(client, observation("w2", "kid", WEIGHT, "8.10", "kg", when="2025-03-02T09:00:00-05:00"))
    await put(client, observation("l2", "kid", LENGTH, "75.0", "cm", when="2025-03-02T09:05:00-05:00"))
    await put(client, observation("h2", "kid", HEAD, "44.0", "cm", when="2025-03-02"))
    await put(client, observation("m2", "kid", MUAC, "13.5", "cm", when="2025-03-02"))


def growth_parts(body: dict) -> dict[str, dict]:
    return {part(p, "indicator"): p for p in named(body, "growth")}


async def test_nutrition_status_from_the_latest_measurements(client):
    await child_with_two_visits(client)
    r = await client.get("/fhir/Patient/kid/$nutrition-status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    [anemia] = named(body, "anemia")
    assert part(anemia, "observation") == {"reference": "Observation/hb2"}
    assert part(anemia, "hemoglobin") == {"value": 9.0, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                                          "code": "g/dL"}
    assert part(anemia, "adjustedHemoglobin")["value"] == 9.0
    assert part(anemia, "altitude") == {"value": 0, "unit": "m", "system": "http://unitsofmeasure.org", "code": "m"}
    assert part(anemia, "classification") == "moderate"
    assert part(anemia, "ruleset") == "WHO-2024"
    expected = growth_zscores(sex="female", birth_date=BORN, measurement_date=dt.date(2025, 3, 2),
                              weight_kg=Decimal("8.10"), length_height_cm=Decimal("75.0"), recumbent=True,
                              head_circumference_cm=Decimal("44.0"), muac_cm=Decimal("13.5"))
    growth = growth_parts(body)
    assert list(growth) == INDICATORS
    for indicator, p in growth.items():
        assert Decimal(str(part(p, "zscore"))) == expected.z(indicator), indicator
        assert part(p, "date") == "2025-03-02"
        assert part(p, "classification") == expected.indicators[indicator].classification
    assert parts(growth["wflh"], "observation") == [{"reference": "Observation/w2"}, {"reference": "Observation/l2"}]
    assert parts(growth["acfa"], "observation") == [{"reference": "Observation/m2"}]


async def test_nutrition_status_as_of_a_date(client):
    await child_with_two_visits(client)
    body = (await client.get("/fhir/Patient/kid/$nutrition-status?date=2024-12-31")).json()
    [anemia] = named(body, "anemia")
    assert part(anemia, "observation") == {"reference": "Observation/hb1"}
    assert part(anemia, "classification") == "none"
    growth = growth_parts(body)
    assert list(growth) == ["wfa", "lhfa", "wflh", "bfa"]
    assert {part(p, "date") for p in growth.values()} == {"2024-09-01"}


async def test_growth_history(client):
    await child_with_two_visits(client)
    body = (await client.get("/fhir/Patient/kid/$growth")).json()
    assert part({"part": body["parameter"]}, "patient") == {"reference": "Patient/kid"}
    days = named(body, "measurement")
    assert [part(d, "date") for d in days] == ["2024-09-01", "2025-03-02"]
    first = days[0]
    assert part(first, "ageDays") == (dt.date(2024, 9, 1) - BORN).days
    assert part(first, "weight")["value"] == 7.0 and part(first, "length")["value"] == 66.0
    scores = {part(z, "indicator"): part(z, "zscore") for z in parts(first, "zscore")}
    expected = growth_zscores(sex="female", birth_date=BORN, measurement_date=dt.date(2024, 9, 1),
                              weight_kg=Decimal("7.00"), length_height_cm=Decimal("66.0"), recumbent=True)
    assert scores == {i: float(expected.z(i)) for i in ("wfa", "lhfa", "wflh", "bfa")}
    assert len(parts(days[1], "zscore")) == 6


async def test_weight_and_length_of_one_day_give_weight_for_length(client):
    await child_with_two_visits(client)
    wflh = await get(client, "Observation/w2-wflh")
    assert wflh["derivedFrom"] == [{"reference": "Observation/w2"}, {"reference": "Observation/l2"}]
    assert await get(client, "Observation/w2-bfa") is not None
    await client.delete("/fhir/Observation/l2")
    assert await get(client, "Observation/w2-wflh") is None
    assert await get(client, "Observation/w2-wfa") is not None


@pytest.mark.parametrize("weight_first", [True, False])
async def test_one_local_day_at_the_extreme_offsets_is_one_day(client, weight_first):
    """Weight at 23:30 on 2 March at UTC-12:00 and length at 00:30 the same local day at UTC+14:00
    are 47 hours apart in UTC; the rules read the day's stored measurements through a UTC window,
    which must still hold the other one, whichever came first. The day after is another day."""
    await put(client, patient("kid"))
    await put(client, observation("next", "kid", LENGTH, "75.0", "cm", when="2025-03-03T00:30:00+14:00"))
    weight = observation("w", "kid", WEIGHT, "9.0", "kg", when="2025-03-02T23:30:00-12:00")
    length = observation("l", "kid", LENGTH, "75.0", "cm", when="2025-03-02T00:30:00+14:00")
    for resource in (weight, length) if weight_first else (length, weight):
        await put(client, resource)
    wflh = await get(client, "Observation/w-wflh")
    assert wflh is not None
    assert wflh["derivedFrom"] == [{"reference": "Observation/w"}, {"reference": "Observation/l"}]
    assert await get(client, "Observation/next-wflh") is None


async def test_sam_by_weight_for_length(client):
    await put(client, patient("kid"))
    assert growth_zscores(sex="female", birth_date=BORN, measurement_date=dt.date(2025, 3, 2), weight_kg=6,
                          length_height_cm=75, recumbent=True).sam_criteria == ("whz",)
    await put(client, observation("w", "kid", WEIGHT, 6, "kg"))
    assert await get(client, "Flag/kid-sam") is None
    await put(client, observation("l", "kid", LENGTH, 75, "cm"))
    assert evidence(await get(client, "Flag/kid-sam")) == ["Observation/l", "Observation/w"]
    assert reasons(await get(client, "ServiceRequest/kid-referral-sam")) == ["Observation/l", "Observation/w"]
    await put(client, observation("w", "kid", WEIGHT, "8.5", "kg"))  # weight corrected
    assert await get(client, "Flag/kid-sam") is None
    assert await get(client, "ServiceRequest/kid-referral-sam") is None


async def test_a_transaction_with_a_days_measurements(client):
    await put(client, patient("kid"))
    entries = [{"resource": observation(i, "kid", code, v, u), "request": {"method": "PUT", "url": f"Observation/{i}"}}
               for i, code, v, u in (("w", WEIGHT, 6, "kg"), ("l", LENGTH, 75, "cm"))]
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                          headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert await get(client, "Observation/w-wflh") is not None
    assert evidence(await get(client, "Flag/kid-sam")) == ["Observation/l", "Observation/w"]


async def test_stored_immunizations_forecast_like_the_posted_ones(client):
    await put(client, patient("kid"))
    doses = [immunization("bcg", "kid", "BCG", "2024-01-11"), immunization("p1", "kid", "PENTA", "2024-03-12")]
    for dose in doses:
        await put(client, dose)
    stored = (await client.get("/fhir/Patient/kid/$immds-forecast?assessmentDate=2024-05-20")).json()
    posted = (await client.post("/fhir/$immds-forecast", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "assessmentDate", "valueDate": "2024-05-20"},
            {"name": "patient", "resource": await get(client, "Patient/kid")},
            *({"name": "immunization", "resource": d} for d in doses)]})).json()
    assert named(stored, "recommendation") == named(posted, "recommendation")
    assert len(named(stored, "evaluation")) == 2


async def test_pregnancy_record_sets_the_trimester(client):
    await put(client, patient("mama", birth="2000-05-01"))
    await put(client, {
        "resourceType": "Condition", "id": "preg",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "77386006"}]},
        "subject": {"reference": "Patient/mama"}, "onsetDateTime": "2025-01-01",  # LMP: week 17 on 1 May
    })
    # 10.6 g/dL: anaemic for a non-pregnant woman (< 12.0), not in the second trimester (< 10.5).
    assert v3(await put(client, hb("hb", "mama", "10.6", when="2025-05-01"))) == "N"
    [anemia] = named((await client.get("/fhir/Patient/mama/$nutrition-status")).json(), "anemia")
    assert (part(anemia, "pregnant"), part(anemia, "trimester"), part(anemia, "group")) == (True, 2, "pregnant-t2")
    # A later estimated delivery date re-dates the pregnancy to week 0-1: first trimester (< 11.0).
    await put(client, {"resourceType": "Observation", "id": "edd", "status": "final",
                       "code": {"coding": [{"system": LOINC, "code": "11778-8"}]},
                       "subject": {"reference": "Patient/mama"}, "effectiveDateTime": "2025-05-01",
                       "valueDateTime": "2026-01-30"})
    assert v3(await put(client, hb("hb", "mama", "10.6", when="2025-05-01"))) == "L"
    forecast = (await client.get("/fhir/Patient/mama/$immds-forecast?assessmentDate=2025-05-01")).json()
    series = {r["series"] for r in named(forecast, "recommendation")[0]["resource"]["recommendation"]}
    assert any("gestacion" in s for s in series)
