"""Observation.interpretation on hemoglobin (WHO-2024), recorded on write, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from fhir_mappings import fhir_json
from tests.clinical_api.resources import (
    ANAEMIA,
    RESIDENCE,
    V3,
    get,
    hb,
    interpretation_codes,
    location,
    observation,
    patient,
    put,
    v3,
)

# Born 2024-01-10, measured 2025-03-02: 13 months, WHO-2024 group 6-23 months (anaemia below 10.5 g/dL).


async def test_band_edges_at_6_to_23_months(client):
    await put(client, patient("kid"))
    expected = {"10.5": ("N", "none"), "10.4": ("L", "mild"), "9.5": ("L", "mild"), "9.4": ("L", "moderate"),
                "7.0": ("L", "moderate"), "6.9": ("LL", "severe")}
    for i, (value, (code, cls)) in enumerate(expected.items()):
        stored = await put(client, hb(f"hb{i}", "kid", value))
        assert v3(stored) == code, value
        assert (ANAEMIA, cls) in interpretation_codes(stored), value
        spanish = ("Sin anemia", "Anemia leve", "Anemia moderada", "Anemia severa")
        assert stored["interpretation"][0]["text"].startswith(spanish)


async def test_exact_decimal_is_kept_and_classified(client):
    await put(client, patient("kid"))
    r = await client.post("/fhir/Observation", content=(
        '{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",'
        '"code":"30352-9"}]},"subject":{"reference":"Patient/kid"},"effectiveDateTime":"2025-03-02T10:15:00-05:00",'
        '"valueQuantity":{"value":10.40,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}'),
        headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201
    assert '"value":10.40' in r.text
    assert v3(r.json()) == "L"


async def test_grams_per_litre_and_venous_code(client):
    await put(client, patient("kid"))
    stored = await put(client, observation("v1", "kid", "30350-3", 104, "g/L"))
    assert v3(stored) == "L"
    stored = await put(client, observation("v2", "kid", "30350-3", 105, "g/L"))
    assert v3(stored) == "N"


async def test_altitude_from_the_residence_location(client):
    await put(client, location("puno", 3000))  # 3000-3499 m: subtract 2.1 g/dL
    await put(client, patient("kid", extension=[{"url": RESIDENCE, "valueReference": {"reference": "Location/puno"}}]))
    assert v3(await put(client, hb("a", "kid", "12.6"))) == "N"  # 10.5 adjusted
    assert v3(await put(client, hb("b", "kid", "12.5"))) == "L"  # 10.4 adjusted
    assert "altitud 3000 m" in (await get(client, "Observation/b"))["interpretation"][0]["text"]


async def test_altitude_from_the_encounter_location_and_its_parent(client):
    await put(client, location("district", 1200))  # 1000-1499 m: subtract 0.8
    await put(client, location("community", None, partOf={"reference": "Location/district"}))
    await put(client, {"resourceType": "Encounter", "id": "visit", "status": "finished",
                       "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                       "subject": {"reference": "Patient/kid"},
                       "location": [{"location": {"reference": "Location/community"}}]})
    await put(client, patient("kid"))
    visit = {"encounter": {"reference": "Encounter/visit"}}
    assert v3(await put(client, hb("a", "kid", "11.3", **visit))) == "N"  # 10.5
    assert v3(await put(client, hb("b", "kid", "11.2", **visit))) == "L"  # 10.4
    assert v3(await put(client, hb("c", "kid", "11.2"))) == "N"  # no Location: default 0 m


async def test_a_visit_bundle_reads_its_own_encounter_patient_and_location(client):
    """Everything the interpretation reads is created in the same transaction, written in one go."""
    urn = {name: f"urn:uuid:0b9d3c1e-0000-4000-8000-00000000000{i}" for i, name in enumerate(
        ("district", "encounter", "kid", "hb"))}

    def post(name: str, resource: dict) -> dict:
        body = {k: v for k, v in resource.items() if k != "id"}
        return {"fullUrl": urn[name], "resource": body, "request": {"method": "POST", "url": body["resourceType"]}}

    encounter = {"resourceType": "Encounter", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
                 "subject": {"reference": urn["kid"]}, "location": [{"location": {"reference": urn["district"]}}]}
    measured = {**hb("x", "kid", "11.2"), "subject": {"reference": urn["kid"]},
                "encounter": {"reference": urn["encounter"]}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        post("hb", measured), post("encounter", encounter), post("kid", patient("x")),
        post("district", location("x", 1200)),  # 1000-1499 m: subtract 0.8, so 11.2 is 10.4
    ]}
    r = await client.post("/fhir", content=fhir_json.dumps(bundle), headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    stored = await get(client, r.json()["entry"][0]["response"]["location"].rsplit("/_history", 1)[0])
    assert stored is not None and v3(stored) == "L"
    assert "altitud 1200 m" in stored["interpretation"][0]["text"]


async def test_below_500_m_there_is_no_adjustment(client):
    await put(client, location("esperanza", 499))
    home = {"url": RESIDENCE, "valueReference": {"reference": "Location/esperanza"}}
    await put(client, patient("kid", extension=[home]))
    assert v3(await put(client, hb("a", "kid", "10.4"))) == "L"


async def test_correction_replaces_the_derived_interpretation_and_keeps_the_clients(client):
    await put(client, patient("kid"))
    device = {"coding": [{"system": V3, "code": "A", "display": "Abnormal"}], "text": "from the HemoCue"}
    stored = await put(client, hb("a", "kid", "6.5", interpretation=[device]))
    assert stored["interpretation"][0] == device
    assert v3({"interpretation": stored["interpretation"][1:]}) == "LL"
    # The client sends back what it read, with the value corrected: the old class must not survive.
    stored["valueQuantity"]["value"] = 11.0
    corrected = await put(client, stored)
    assert corrected["interpretation"][0] == device
    assert [c for c in interpretation_codes(corrected) if c[0] == ANAEMIA] == [(ANAEMIA, "none")]
    assert len(corrected["interpretation"]) == 2


async def test_no_interpretation_when_not_classifiable(client):
    await put(client, patient("baby", birth="2025-01-10"))  # under 6 months: no WHO-2024 cut-off
    assert "interpretation" not in await put(client, hb("a", "baby", "9.0"))
    await put(client, patient("kid"))
    mmol = await put(client, observation("b", "kid", "718-7", "6.2", "mmol/L"))  # ambiguous unit: stored as sent
    assert "interpretation" not in mmol
    assert "interpretation" not in await put(client, hb("c", "nobody", "6.0"))  # unknown patient
    assert "interpretation" not in await put(client, {**hb("d", "kid", "6.0"), "status": "entered-in-error"})
    await put(client, patient("noage", birth="2024"))
    assert "interpretation" not in await put(client, hb("e", "noage", "6.0"))


async def test_default_altitude_comes_from_the_environment(client_with_env):
    client = await client_with_env(PUENTE_DEFAULT_ALTITUDE_M="3000")
    await put(client, patient("kid"))
    assert v3(await put(client, hb("a", "kid", "12.5"))) == "L"
    assert v3(await put(client, hb("b", "kid", "12.6"))) == "N"


async def test_a_residence_without_altitude_is_reported_not_taken_for_sea_level(client):
    """A highland community whose Location has no altitude: the default is used, and said so (issue 22)."""
    await put(client, location("puna", None))
    home = {"url": RESIDENCE, "valueReference": {"reference": "Location/puna"}}
    await put(client, patient("kid", extension=[home]))
    stored = await put(client, hb("a", "kid", "11.2"))
    text = stored["interpretation"][0]["text"]
    assert "Location/puna no registra altitud" in text and "zona alta" in text
    status = (await client.get("/fhir/Patient/kid/$nutrition-status")).json()
    anemia = next(p for p in status["parameter"] if p["name"] == "anemia")
    warnings = [p["valueString"] for p in anemia["part"] if p["name"] == "warning"]
    assert warnings and "Location/puna has no altitude" in warnings[0]
