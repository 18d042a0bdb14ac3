"""The FHIR <-> rules glue without a database: reading measurements, pregnancy, ids, Parameters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from clinical import Indicator, classify_anaemia
from fhir_mappings.outcomes import Invalid
from fhir_mappings.validation import validate_resource
from rules.altitude import Altitude
from rules.config import ClinicalConfig
from rules.derived import derived_id, flag_resource, referral_draft, zscore_observation
from rules.fhir_in import Kind, Measurement, parse_date, reference_id
from rules.growth_days import growth_days
from rules.hemoglobin import HemoglobinAssessment, interpretation_concept
from rules.immds import administered_doses, parse_forecast_request
from rules.nutrition import growth_parameters, nutrition_parameters
from rules.pregnancy import NOT_PREGNANT, pregnancy_on
from tests.clinical_api.resources import HB, LENGTH, LOINC, MUAC, WEIGHT, immunization, observation

ON = dt.date(2025, 5, 1)


def measurement(oid: str, loinc: str, value: str, unit: str, when: str = "2025-03-02") -> Measurement:
    m = Measurement.from_observation(observation(oid, "kid", loinc, value, unit, when))
    assert m is not None
    return m


def test_measurement_reading():
    m = measurement("a", HB, "10.40", "g/dL", "2025-03-02T23:30:00-05:00")
    assert (m.kind, m.patient_id, m.date, m.value, m.unit) == (Kind.HEMOGLOBIN, "kid", dt.date(2025, 3, 2),
                                                               Decimal("10.40"), "g/dL")
    base = observation("a", "kid", WEIGHT, "8", "kg")
    assert Measurement.from_observation({**base, "effectiveDateTime": "2025-03"}) is None  # partial date
    assert Measurement.from_observation({**base, "status": "entered-in-error"}) is None
    assert Measurement.from_observation({**base, "subject": {"reference": "Group/g"}}) is None
    assert Measurement.from_observation({**base, "dataAbsentReason": {"text": "refused"}}) is None
    period = {k: v for k, v in base.items() if k != "effectiveDateTime"} | {"effectivePeriod": {"start": "2025-03-02"}}
    assert Measurement.from_observation(period).date == dt.date(2025, 3, 2)
    assert reference_id({"reference": "Patient/p1/_history/2"}, "Patient") == "p1"
    assert reference_id({"reference": "https://x.org/fhir/Patient/p1"}, "Patient") is None
    assert reference_id({"reference": "Location/p1"}, "Patient") is None
    assert parse_date("2025-02-30") is None


def test_derived_ids_stay_within_64_characters():
    assert derived_id("w1", "wflh") == "w1-wflh"
    long_id = "x" * 64
    made = derived_id(long_id, "wflh")
    assert len(made) <= 64 and made.endswith("-wflh") and made == derived_id(long_id, "wflh")
    assert derived_id("y" * 64, "wflh") != made


def test_derived_resources_are_valid_r4():
    day = growth_days([measurement("w", WEIGHT, "8.1", "kg"), measurement("l", LENGTH, "75", "cm"),
                       measurement("m", MUAC, "11.0", "cm")], birth_date=dt.date(2024, 1, 10), sex="female")[0]
    assert day.result is not None
    for indicator in (Indicator.WFA, Indicator.WFLH, Indicator.ACFA):
        validate_resource(zscore_observation("kid", day, indicator, day.result.indicators[indicator], "WHO-2006"))
    validate_resource(flag_resource("kid-sam", "sam", "kid", dt.date(2025, 3, 2), ["Observation/m"]))
    validate_resource(referral_draft("kid-referral-sam", "sam", "kid", "2025-03-02T10:00:00.000Z", ["Observation/m"]))
    hb = observation("h", "kid", HB, "6.5", "g/dL")
    result = classify_anaemia(Decimal("6.5"), "g/dL", birth_date=dt.date(2024, 1, 10), measurement_date=ON,
                              sex="female", altitude_m=0)
    m = Measurement.from_observation(hb)
    assert m is not None
    hb["interpretation"] = [interpretation_concept(HemoglobinAssessment(m, Altitude(Decimal(0), None), NOT_PREGNANT,
                                                                        result))]
    validate_resource(hb)


def test_growth_day_keeps_the_latest_of_a_kind_and_reports_unit_errors():
    day = growth_days([
        measurement("w-early", WEIGHT, "8.0", "kg", "2025-03-02T08:00:00-05:00"),
        measurement("w-late", WEIGHT, "8200", "g", "2025-03-02T11:00:00-05:00"),
        measurement("l", LENGTH, "75", "[in_i]"),
    ], birth_date=dt.date(2024, 1, 10), sex="female")[0]
    assert day.chosen["weight"].id == "w-late" and [m.id for m in day.considered] == ["l", "w-early", "w-late"]
    assert "length" not in day.chosen and "[in_i]" in day.notes[0]
    assert day.result is not None and day.result.indicators[Indicator.WFA].value == Decimal("8.200")
    no_sex = growth_days([measurement("w", WEIGHT, "8", "kg")], birth_date=dt.date(2024, 1, 10), sex=None)[0]
    assert no_sex.result is None and "sex" in (no_sex.reason or "")


def test_parameters_shapes_are_valid():
    days = growth_days([measurement("w", WEIGHT, "8.1", "kg"), measurement("l", LENGTH, "75", "cm")],
                       birth_date=dt.date(2024, 1, 10), sex="female")
    validate_resource(nutrition_parameters(None, days), expected_type="Parameters")
    validate_resource(growth_parameters("kid", days), expected_type="Parameters")
    m = measurement("h", HB, "6.2", "mmol/L")
    failed = HemoglobinAssessment(m, Altitude(Decimal(0), None), NOT_PREGNANT, None, "unit not accepted")
    body = nutrition_parameters(failed, [])
    validate_resource(body, expected_type="Parameters")
    anemia = {p["name"]: p for p in body["parameter"][0]["part"]}
    assert anemia["classification"]["valueCode"] == "not-classifiable"
    assert anemia["hemoglobin"]["valueQuantity"]["code"] == "mmol/L" and "reason" in anemia


def _condition(**extra: object) -> dict:
    return {"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": "http://snomed.info/sct",
            "code": "77386006"}]}, "subject": {"reference": "Patient/p"}, **extra}


ACTIVE = {"clinicalStatus": {"coding": [{"code": "active"}]}}


def _status(pregnant: bool, when: str, *components: dict) -> dict:
    answer = "LA15173-0" if pregnant else "LA26683-5"
    body = {"resourceType": "Observation", "id": f"s{when}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "82810-3"}]}, "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer}]}}
    if components:
        body["component"] = list(components)
    return body


def test_pregnancy_from_condition_with_onset_as_the_start():
    state = pregnancy_on(ON, [_condition(onsetDateTime="2025-01-01", **ACTIVE)], [])
    assert (state.pregnant, state.gestational_days, state.trimester) == (True, 120, 2)
    assert state.evidence == ("Condition/c",)
    assert not pregnancy_on(ON, [_condition(onsetDateTime="2025-06-01", **ACTIVE)], []).pregnant  # not yet
    assert not pregnancy_on(ON, [_condition(onsetDateTime="2024-09-01", abatementDateTime="2025-04-20")], []).pregnant
    assert pregnancy_on(dt.date(2025, 4, 1), [_condition(onsetDateTime="2024-09-01",
                                                         abatementDateTime="2025-04-20")], []).pregnant
    resolved = {"clinicalStatus": {"coding": [{"code": "resolved"}]}}
    assert not pregnancy_on(ON, [_condition(onsetDateTime="2025-01-01", **resolved)], []).pregnant
    refuted = {"verificationStatus": {"coding": [{"code": "refuted"}]}}
    assert not pregnancy_on(ON, [_condition(**ACTIVE, **refuted)], []).pregnant
    undated = pregnancy_on(ON, [_condition(**ACTIVE)], [])
    assert undated.pregnant and undated.trimester is None


def test_pregnancy_from_status_with_dating_components_and_observations():
    ga = {"code": {"coding": [{"system": LOINC, "code": "49051-6"}]},
          "valueQuantity": {"value": 30, "unit": "wk", "code": "wk"}}
    state = pregnancy_on(ON, [], [_status(True, "2025-04-01", ga)])
    assert (state.gestational_days, state.trimester) == (30 * 7 + 30, 3)
    edd = {"resourceType": "Observation", "id": "e", "status": "final", "effectiveDateTime": "2025-04-15",
           "code": {"coding": [{"system": LOINC, "code": "11778-8"}]}, "valueDateTime": "2025-12-01"}
    state = pregnancy_on(ON, [], [_status(True, "2025-04-01", ga), edd])  # the later record dates it
    assert state.gestational_days == 280 - (dt.date(2025, 12, 1) - ON).days and state.trimester == 1
    assert not pregnancy_on(ON, [], [_status(False, "2025-04-01")]).pregnant
    assert not pregnancy_on(ON, [], [_status(True, "2024-04-01")]).pregnant  # more than 42 weeks ago
    assert not pregnancy_on(ON, [], [edd]).pregnant  # a dating alone is not a pregnancy record
    old_edd = {**edd, "valueDateTime": "2024-01-01"}
    assert pregnancy_on(ON, [], [_status(True, "2025-04-01"), old_edd]).trimester is None  # another pregnancy


def test_forecast_request_parsing():
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "2024-01-10"}
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": patient},
        {"name": "immunization", "resource": immunization("i", "p", "BCG", "2024-01-11")}]}
    parsed = parse_forecast_request(body, today=ON)
    assert parsed.assessment_date == ON and parsed.patient == patient and len(parsed.immunizations) == 1
    with pytest.raises(Invalid):
        parse_forecast_request({**body, "parameter": body["parameter"][1:]}, today=ON)
    with pytest.raises(Invalid):
        parse_forecast_request([], today=ON)


def test_only_doses_given_count():
    cvx = immunization("c", "p", "x", "2024-02-01")
    cvx["vaccineCode"] = {"coding": [{"system": "urn:local", "code": "zz"},
                                     {"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}]}
    doses = administered_doses([
        immunization("a", "p", "BCG", "2024-01-11"),
        immunization("b", "p", "HVB", "2024-01-11", status="not-done"),
        immunization("d", "p", "HVB", "2024-01-11", isSubpotent=True),
        {**immunization("e", "p", "HVB", "x"), "occurrenceDateTime": "2024"},
        cvx,
    ])
    assert [(d.id, d.vaccine_code, d.system) for d in doses] == [
        ("a", "BCG", None), ("c", "08", "http://hl7.org/fhir/sid/cvx")]


def test_configuration_from_the_environment():
    assert ClinicalConfig.from_env({}) == ClinicalConfig(True, Decimal(0))
    config = ClinicalConfig.from_env({"PUENTE_CLINICAL_HOOKS": "OFF", "PUENTE_DEFAULT_ALTITUDE_M": "3400"})
    assert config == ClinicalConfig(False, Decimal(3400))
    with pytest.raises(ValueError, match="PUENTE_CLINICAL_HOOKS"):
        ClinicalConfig.from_env({"PUENTE_CLINICAL_HOOKS": "maybe"})
    with pytest.raises(ValueError, match="PUENTE_DEFAULT_ALTITUDE_M"):
        ClinicalConfig.from_env({"PUENTE_DEFAULT_ALTITUDE_M": "high"})
