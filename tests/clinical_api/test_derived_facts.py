"""Derived facts on write: z-score Observations, Flags and draft referrals; idempotent and undone.

Over HTTP on SQLite and PostgreSQL. The facts that need two measurements of one day (weight-for-
length, SAM by WHZ) are in test_operations_search.py: they find the day's other measurement by search.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from clinical import growth_zscores
from fhir_mappings import fhir_json
from tests.clinical_api.resources import (
    FHIR_JSON,
    LENGTH,
    MUAC,
    WEIGHT,
    evidence,
    get,
    hb,
    observation,
    patient,
    put,
    reasons,
)

DERIVED = {"system": "https://puente.example.org/fhir/CodeSystem/data-origin", "code": "derived"}
BORN, MEASURED = dt.date(2024, 1, 10), dt.date(2025, 3, 2)


def tagged(resource: dict) -> bool:
    return any(t["system"] == DERIVED["system"] and t["code"] == DERIVED["code"] for t in resource["meta"]["tag"])


async def test_severe_anaemia_gives_a_flag_and_a_draft_referral(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "6.5"))
    flag = await get(client, "Flag/kid-severe-anaemia")
    assert flag is not None and tagged(flag)
    assert flag["status"] == "active"
    assert flag["subject"] == {"reference": "Patient/kid"}
    assert flag["code"]["coding"][0]["code"] == "severe-anaemia"
    assert flag["period"]["start"] == "2025-03-02"
    assert evidence(flag) == ["Observation/hb1"]
    referral = await get(client, "ServiceRequest/kid-referral-severe-anaemia")
    assert referral is not None and tagged(referral)
    assert (referral["status"], referral["intent"], referral["priority"]) == ("draft", "proposal", "urgent")
    assert reasons(referral) == ["Observation/hb1"]
    assert referral["code"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "3457005",
                                             "display": "Patient referral"}


async def test_moderate_anaemia_gives_neither(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "7.0"))
    assert await get(client, "Flag/kid-severe-anaemia") is None
    assert await get(client, "ServiceRequest/kid-referral-severe-anaemia") is None


async def test_reposting_does_not_multiply_flags_or_referrals(client):
    await put(client, patient("kid"))
    body = hb("hb1", "kid", "6.5")
    for _ in range(3):
        await put(client, body)
    flag = await get(client, "Flag/kid-severe-anaemia")
    referral = await get(client, "ServiceRequest/kid-referral-severe-anaemia")
    assert flag["meta"]["versionId"] == "1" and referral["meta"]["versionId"] == "1"
    # The same measurement uploaded again with a new id (a retried POST): still one Flag and one draft.
    copy = {k: v for k, v in body.items() if k != "id"}
    r = await client.post("/fhir/Observation", json={**copy, "valueQuantity": {**copy["valueQuantity"], "value": 6.5}})
    assert r.status_code == 201
    second = f"Observation/{r.json()['id']}"
    assert evidence(await get(client, "Flag/kid-severe-anaemia")) == ["Observation/hb1", second]
    assert reasons(await get(client, "ServiceRequest/kid-referral-severe-anaemia")) == ["Observation/hb1", second]
    assert await get(client, "ServiceRequest/kid-referral-severe-anaemia-2") is None
    assert (await client.get("/fhir/Flag/kid-severe-anaemia/_history/3")).status_code == 404


async def test_correction_undoes_the_flag_and_the_draft(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "6.5"))
    await put(client, hb("hb1", "kid", "11.0"))  # the CHW mistyped: corrected
    assert (await client.get("/fhir/Flag/kid-severe-anaemia")).status_code == 410
    assert (await client.get("/fhir/ServiceRequest/kid-referral-severe-anaemia")).status_code == 410
    await put(client, hb("hb1", "kid", "6.4"))  # and back: everything returns
    assert (await get(client, "Flag/kid-severe-anaemia"))["status"] == "active"
    assert (await get(client, "ServiceRequest/kid-referral-severe-anaemia"))["status"] == "draft"


async def test_deletion_and_entered_in_error_undo(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "6.5"))
    await put(client, hb("hb2", "kid", "6.0"))
    assert (await client.delete("/fhir/Observation/hb1")).status_code in (200, 204)
    assert evidence(await get(client, "Flag/kid-severe-anaemia")) == ["Observation/hb2"]
    assert reasons(await get(client, "ServiceRequest/kid-referral-severe-anaemia")) == ["Observation/hb2"]
    await put(client, {**hb("hb2", "kid", "6.0"), "status": "entered-in-error"})
    assert await get(client, "Flag/kid-severe-anaemia") is None
    assert await get(client, "ServiceRequest/kid-referral-severe-anaemia") is None


async def test_a_referral_acted_on_is_left_alone_and_new_evidence_opens_another(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "6.5"))
    referral = await get(client, "ServiceRequest/kid-referral-severe-anaemia")
    referral["status"] = "active"  # the supervisor confirmed it
    await put(client, referral)
    await client.delete("/fhir/Observation/hb1")
    kept = await get(client, "ServiceRequest/kid-referral-severe-anaemia")
    assert kept["status"] == "active" and reasons(kept) == ["Observation/hb1"]
    await put(client, hb("hb2", "kid", "6.2", when="2025-09-01"))
    second = await get(client, "ServiceRequest/kid-referral-severe-anaemia-2")
    assert second["status"] == "draft" and reasons(second) == ["Observation/hb2"]
    await put(client, hb("hb2", "kid", "6.2", when="2025-09-01"))  # re-post: nothing new
    assert await get(client, "ServiceRequest/kid-referral-severe-anaemia-3") is None


async def test_a_closed_flag_is_reopened_only_by_new_evidence(client):
    await put(client, patient("kid"))
    await put(client, hb("hb1", "kid", "6.5"))
    flag = await get(client, "Flag/kid-severe-anaemia")
    flag["status"] = "inactive"  # a nurse closed it after treatment
    await put(client, flag)
    await put(client, hb("hb1", "kid", "6.5"))
    assert (await get(client, "Flag/kid-severe-anaemia"))["status"] == "inactive"
    await put(client, hb("hb2", "kid", "6.8", when="2025-09-01"))
    reopened = await get(client, "Flag/kid-severe-anaemia")
    assert reopened["status"] == "active"
    assert reopened["period"]["start"] == "2025-09-01"
    assert evidence(reopened) == ["Observation/hb1", "Observation/hb2"]


async def test_a_resource_not_written_by_the_rules_is_never_touched(client):
    await put(client, patient("kid"))
    own = {"resourceType": "Flag", "id": "kid-severe-anaemia", "status": "active",
           "code": {"text": "the clinic's own flag"}, "subject": {"reference": "Patient/kid"}}
    await put(client, own)
    await put(client, hb("hb1", "kid", "6.5"))
    await client.delete("/fhir/Observation/hb1")
    flag = await get(client, "Flag/kid-severe-anaemia")
    assert flag["meta"]["versionId"] == "1" and flag["code"] == {"text": "the clinic's own flag"}


async def test_subject_corrected_moves_the_flag(client):
    await put(client, patient("ana"))
    await put(client, patient("rosa"))
    await put(client, hb("hb1", "ana", "6.5"))
    await put(client, hb("hb1", "rosa", "6.5"))  # recorded against the wrong sister
    assert await get(client, "Flag/ana-severe-anaemia") is None
    assert evidence(await get(client, "Flag/rosa-severe-anaemia")) == ["Observation/hb1"]


async def test_weight_gives_a_weight_for_age_zscore_observation(client):
    await put(client, patient("kid"))
    await put(client, observation("w1", "kid", WEIGHT, "8.10", "kg"))
    z = await get(client, "Observation/w1-wfa")
    expected = growth_zscores(sex="female", birth_date=BORN, measurement_date=MEASURED, weight_kg=Decimal("8.10"))
    assert tagged(z)
    assert z["code"]["coding"][0]["code"] == "wfa"
    assert Decimal(str(z["valueQuantity"]["value"])) == expected.z("wfa")
    assert z["derivedFrom"] == [{"reference": "Observation/w1"}]
    assert z["subject"] == {"reference": "Patient/kid"} and z["effectiveDateTime"] == "2025-03-02"
    assert z["method"]["coding"][0]["code"] == "WHO-2006"
    assert z["interpretation"][0]["coding"][0]["code"] == expected.indicators["wfa"].classification
    await put(client, observation("w1", "kid", WEIGHT, "8.10", "kg"))  # re-post: no new version
    assert (await get(client, "Observation/w1-wfa"))["meta"]["versionId"] == "1"
    await put(client, observation("w1", "kid", WEIGHT, "9.10", "kg"))  # corrected: re-scored
    corrected = await get(client, "Observation/w1-wfa")
    assert corrected["meta"]["versionId"] == "2" and corrected["valueQuantity"]["value"] != z["valueQuantity"]["value"]
    await client.delete("/fhir/Observation/w1")
    assert (await client.get("/fhir/Observation/w1-wfa")).status_code == 410


async def test_a_measurement_written_again_after_its_deletion_is_scored_again(client):
    await put(client, patient("kid"))
    await put(client, observation("w1", "kid", WEIGHT, "8.10", "kg"))
    await client.delete("/fhir/Observation/w1")
    assert (await client.get("/fhir/Observation/w1-wfa")).status_code == 410
    await put(client, observation("w1", "kid", WEIGHT, "8.10", "kg"))  # the undone z-score's id is taken
    z = await get(client, "Observation/w1-wfa")
    assert z is not None and tagged(z) and z["meta"]["versionId"] == "3"
    assert z["derivedFrom"] == [{"reference": "Observation/w1"}]


async def test_a_new_measurement_leaves_someone_elses_resource_under_its_zscore_id(client):
    await put(client, patient("kid"))
    own = observation("w1-wfa", "kid", WEIGHT, "7.00", "kg")  # a clinic's own record, an unlucky id
    await put(client, own)
    weight = observation("w1", "kid", WEIGHT, "8.10", "kg")
    r = await client.put("/fhir/Observation/w1", content=fhir_json.dumps(weight), headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    kept = await get(client, "Observation/w1-wfa")
    assert kept["meta"]["versionId"] == "1" and "tag" not in kept["meta"] and kept["valueQuantity"]["value"] == 7.0


async def test_sam_by_muac_flags_refers_and_undoes(client):
    await put(client, patient("kid"))
    await put(client, observation("m1", "kid", MUAC, 110, "mm"))
    acfa = await get(client, "Observation/m1-acfa")
    assert acfa["derivedFrom"] == [{"reference": "Observation/m1"}]
    assert acfa["interpretation"][0]["coding"][0]["code"] == "sam"
    assert evidence(await get(client, "Flag/kid-sam")) == ["Observation/m1"]
    assert reasons(await get(client, "ServiceRequest/kid-referral-sam")) == ["Observation/m1"]
    await put(client, observation("m1", "kid", MUAC, "13.0", "cm"))  # corrected: 130 mm is normal
    assert (await get(client, "Observation/m1-acfa"))["interpretation"][0]["coding"][0]["code"] == "normal"
    assert await get(client, "Flag/kid-sam") is None
    assert await get(client, "ServiceRequest/kid-referral-sam") is None


async def test_severe_stunting_flags_without_a_referral(client):
    await put(client, patient("kid"))
    await put(client, observation("l1", "kid", LENGTH, "65.0", "cm"))
    lhfa = await get(client, "Observation/l1-lhfa")
    assert lhfa["interpretation"][0]["coding"][0]["code"] == "severe-stunting"
    assert evidence(await get(client, "Flag/kid-severe-stunting")) == ["Observation/l1"]
    assert await get(client, "ServiceRequest/kid-referral-severe-stunting") is None
    await client.delete("/fhir/Observation/l1")
    assert await get(client, "Observation/l1-lhfa") is None
    assert await get(client, "Flag/kid-severe-stunting") is None


async def test_a_code_correction_moves_what_is_derived(client):
    await put(client, patient("kid"))
    await put(client, hb("x1", "kid", "6.5"))
    await put(client, observation("x1", "kid", WEIGHT, "8.1", "kg"))  # it was a weight, not a hemoglobin
    assert await get(client, "Flag/kid-severe-anaemia") is None
    assert await get(client, "Observation/x1-wfa") is not None


async def test_a_transaction_bundle_with_new_patient_and_measurements(client):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f1c1a3e-0000-4000-8000-000000000001",
         "resource": {k: v for k, v in patient("x").items() if k != "id"},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**{k: v for k, v in hb("x", "x", 6.5).items() if k != "id"},
                      "subject": {"reference": "urn:uuid:7f1c1a3e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    patient_id = r.json()["entry"][0]["response"]["location"].split("/")[1]
    observation_id = r.json()["entry"][1]["response"]["location"].split("/")[1]
    assert evidence(await get(client, f"Flag/{patient_id}-severe-anaemia")) == [f"Observation/{observation_id}"]


async def test_nothing_is_derived_when_the_hooks_are_off(client_with_env):
    client = await client_with_env(PUENTE_CLINICAL_HOOKS="off")
    await put(client, patient("kid"))
    stored = await put(client, hb("hb1", "kid", "6.5"))
    assert "interpretation" not in stored
    await put(client, observation("m1", "kid", MUAC, 110, "mm"))
    assert await get(client, "Flag/kid-severe-anaemia") is None
    assert await get(client, "Flag/kid-sam") is None
    assert await get(client, "Observation/m1-acfa") is None


async def test_a_visit_bundle_scores_the_childs_day_once(client):
    """Weight and length posted together: the rules judge the day with both, once (no second version)."""
    await put(client, patient("kid"))
    entries = [
        {"resource": {k: v for k, v in observation(oid, "kid", code, value, unit).items() if k != "id"},
         "request": {"method": "POST", "url": "Observation"}}
        for oid, code, value, unit in (("w", WEIGHT, "7.0", "kg"), ("l", LENGTH, "65.0", "cm"))
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    r = await client.post("/fhir", content=fhir_json.dumps(bundle), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    weight_id, length_id = (e["response"]["location"].split("/")[1] for e in r.json()["entry"])
    wfl = await get(client, f"Observation/{weight_id}-wflh")
    assert wfl is not None and wfl["meta"]["versionId"] == "1"
    assert {d["reference"] for d in wfl["derivedFrom"]} == {f"Observation/{weight_id}", f"Observation/{length_id}"}
    assert (await get(client, f"Observation/{length_id}-lhfa"))["meta"]["versionId"] == "1"
    assert (await get(client, f"Observation/{weight_id}-wfa"))["meta"]["versionId"] == "1"
