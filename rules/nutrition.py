"""$nutrition-status and $growth: a patient's anaemia and growth, as FHIR Parameters.

Both recompute from the stored measurements with the current rule sets (never from stored derived
facts), so they are right even for data written while the hooks were off.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from clinical import Indicator, IndicatorResult, codes, load_anaemia_ruleset, load_growth_ruleset
from fhir_mappings import fhir_json
from rules.fhir_in import GROWTH_LOINC, HEMOGLOBIN_LOINC, Kind, Measurement, birth_date, sex
from rules.growth_days import GrowthDay, growth_days
from rules.hemoglobin import HemoglobinAssessment, assess_hemoglobin
from rules.lookup import patient_measurements
from storage.repository import FhirRepository

Part = dict[str, Any]
_MEASURED = {Kind.WEIGHT: "weight", Kind.LENGTH: "length", Kind.HEIGHT: "height", Kind.HEAD: "headCircumference",
             Kind.MUAC: "muac"}


def _quantity(value: Decimal, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


def _reference(reference: str) -> Part:
    return {"name": "observation", "valueReference": {"reference": reference}}


def anemia_part(assessment: HemoglobinAssessment) -> Part:
    m = assessment.measurement
    parts: list[Part] = [_reference(m.reference), {"name": "date", "valueDate": m.date.isoformat()}]
    result = assessment.result
    if result is None:
        parts.append({"name": "hemoglobin", "valueQuantity": _quantity(m.value, m.unit)})
    else:
        parts.append({"name": "hemoglobin", "valueQuantity": _quantity(result.hemoglobin_g_dl, "g/dL")})
        if result.adjusted_hemoglobin_g_dl is not None:
            parts.append({"name": "adjustedHemoglobin",
                          "valueQuantity": _quantity(result.adjusted_hemoglobin_g_dl, "g/dL")})
    parts.append({"name": "altitude", "valueQuantity": _quantity(assessment.altitude.metres, "m")})
    if assessment.altitude.location_id:
        location = {"reference": f"Location/{assessment.altitude.location_id}"}
        parts.append({"name": "location", "valueReference": location})
    if assessment.altitude.unknown_at:
        parts.append({"name": "warning", "valueString": (
            f"Location/{assessment.altitude.unknown_at} has no altitude (nor any place it is part of): the default "
            f"{assessment.altitude.metres} m was used; a highland residence would be misclassified")})
    classification = "not-classifiable" if result is None else result.classification.value
    parts.append({"name": "classification", "valueCode": classification})
    if result is not None and result.interpretation is not None:
        v3 = result.interpretation
        parts.append({"name": "interpretation",
                      "valueCoding": {"system": v3.system, "code": v3.code, "display": v3.display}})
    parts.append({"name": "ruleset", "valueString": load_anaemia_ruleset().name if result is None else result.ruleset})
    if result is not None and result.group:
        parts.append({"name": "group", "valueString": result.group})
    if assessment.pregnancy.pregnant:
        parts.append({"name": "pregnant", "valueBoolean": True})
        if assessment.pregnancy.trimester is not None:
            parts.append({"name": "trimester", "valueInteger": assessment.pregnancy.trimester})
    reason = assessment.reason or (result.reason if result is not None else None)
    if reason:
        parts.append({"name": "reason", "valueString": reason})
    return {"name": "anemia", "part": parts}


def indicator_parts(day: GrowthDay, indicator: Indicator) -> list[Part]:
    scored: IndicatorResult | None = None if day.result is None else day.result.indicators[indicator]
    parts: list[Part] = [{"name": "indicator", "valueCode": indicator.value}]
    if scored is not None and scored.zscore is not None:
        parts.append({"name": "zscore", "valueDecimal": scored.zscore})
        if scored.classification:
            parts.append({"name": "classification", "valueCode": scored.classification})
    parts.append({"name": "date", "valueDate": day.date.isoformat()})
    parts.extend(_reference(m.reference) for m in day.sources(indicator))
    if scored is not None and scored.implausible:
        parts.append({"name": "flag", "valueCode": "implausible"})
    reason = day.reason if scored is None else scored.reason
    if reason and (scored is None or scored.zscore is None):
        parts.append({"name": "reason", "valueString": reason})
    return parts


def nutrition_parameters(assessment: HemoglobinAssessment | None, days: list[GrowthDay]) -> dict[str, Any]:
    parameters: list[Part] = []
    if assessment is not None:
        parameters.append(anemia_part(assessment))
    for indicator in Indicator:
        latest = next((day for day in reversed(days) if day.sources(indicator)), None)
        if latest is not None:
            parts = indicator_parts(latest, indicator)
            parts.append({"name": "ruleset", "valueString": _growth_ruleset(latest)})
            parameters.append({"name": "growth", "part": parts})
    return _parameters(parameters)


def growth_parameters(patient_id: str, days: list[GrowthDay]) -> dict[str, Any]:
    parameters: list[Part] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
        {"name": "ruleset", "valueString": load_growth_ruleset().name},
    ]
    for day in days:
        parts: list[Part] = [{"name": "date", "valueDate": day.date.isoformat()}]
        if day.result is not None and day.result.age_days is not None:
            parts.append({"name": "ageDays", "valueInteger": day.result.age_days})
        for m in day.chosen.values():
            parts.append({"name": _MEASURED[m.kind], "valueQuantity": _quantity(m.value, m.unit)})
        parts.extend(_reference(m.reference) for m in day.chosen.values())
        for indicator in Indicator:
            if day.sources(indicator):
                parts.append({"name": "zscore", "part": indicator_parts(day, indicator)})
        if day.reason:
            parts.append({"name": "reason", "valueString": day.reason})
        parts.extend({"name": "note", "valueString": note} for note in day.notes)
        parameters.append({"name": "measurement", "part": parts})
    return _parameters(parameters)


def _growth_ruleset(day: GrowthDay) -> str:
    return day.result.ruleset if day.result is not None else load_growth_ruleset().name


def _parameters(parameters: list[Part]) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:
        body["parameter"] = parameters
    return body


async def nutrition_status(
    repository: FhirRepository, context: FhirRepository, patient_id: str, on: dt.date | None,
    default_altitude_m: Decimal,
) -> dict[str, Any]:
    """`repository` (the caller's) reads the patient and measurements; `context` the Location and pregnancy."""
    patient = fhir_json.loads_stored((await repository.read("Patient", patient_id)).content or "{}")
    measurements = await patient_measurements(repository, patient_id, (*HEMOGLOBIN_LOINC, *GROWTH_LOINC))
    if on is not None:
        measurements = [m for m in measurements if m.date <= on]
    hemoglobin = [m for m in measurements if m.kind is Kind.HEMOGLOBIN]
    assessment = None
    if hemoglobin:
        latest = max(hemoglobin, key=_chronological)
        assessment = await assess_hemoglobin(context, latest, patient, default_altitude_m)
    days = growth_days(measurements, birth_date=birth_date(patient), sex=sex(patient))
    return nutrition_parameters(assessment, days)


async def growth_history(repository: FhirRepository, patient_id: str) -> dict[str, Any]:
    patient = fhir_json.loads_stored((await repository.read("Patient", patient_id)).content or "{}")
    measurements = await patient_measurements(repository, patient_id, GROWTH_LOINC)
    days = growth_days(measurements, birth_date=birth_date(patient), sex=sex(patient))
    return growth_parameters(patient_id, days)


def _chronological(m: Measurement) -> tuple[dt.date, str, str]:
    return (m.date, m.when, m.id)
