"""Hemoglobin: the WHO-2024 classification in context, and the interpretation recorded on write."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from clinical import AnaemiaClass, AnaemiaResult, UnitError, classify_anaemia, codes
from clinical.dates import completed_years
from rules.altitude import Altitude, residence_altitude
from rules.config import ClinicalConfig
from rules.fhir_in import Kind, Measurement, Resource, birth_date, codings, sex
from rules.lookup import read_resource
from rules.pregnancy import NOT_PREGNANT, PregnancyState, find_pregnancy
from rules.system import rules_repository
from storage.repository import FhirRepository

# Pregnancy records are looked up only for girls and women from this age (a search per measurement
# for every child would be wasted).
PREGNANCY_FROM_YEARS = 10

CLASS_DISPLAY = {
    AnaemiaClass.NONE: "No anaemia",
    AnaemiaClass.MILD: "Mild anaemia",
    AnaemiaClass.MODERATE: "Moderate anaemia",
    AnaemiaClass.SEVERE: "Severe anaemia",
    AnaemiaClass.NOT_CLASSIFIABLE: "Not classifiable",
}
# The interpretation's text, for the Spanish-speaking programme (codings keep the English display).
CLASS_TEXT_ES = {
    AnaemiaClass.NONE: "Sin anemia",
    AnaemiaClass.MILD: "Anemia leve",
    AnaemiaClass.MODERATE: "Anemia moderada",
    AnaemiaClass.SEVERE: "Anemia severa",
    AnaemiaClass.NOT_CLASSIFIABLE: "No clasificable",
}


@dataclass(frozen=True)
class HemoglobinAssessment:
    measurement: Measurement
    altitude: Altitude
    pregnancy: PregnancyState
    result: AnaemiaResult | None
    reason: str | None = None  # why there is no result


async def assess_hemoglobin(
    context: FhirRepository, measurement: Measurement, patient: Resource, default_altitude_m: Decimal
) -> HemoglobinAssessment:
    """Classify one hemoglobin measurement with the patient's age, sex, pregnancy and altitude.

    `context` reads the Location, Encounter and pregnancy records.
    """
    altitude = await residence_altitude(context, patient, measurement.encounter_id, default_altitude_m)
    born = birth_date(patient)
    if born is None:
        return HemoglobinAssessment(measurement, altitude, NOT_PREGNANT, None, "the patient has no full birthDate")
    if measurement.date < born:
        return HemoglobinAssessment(measurement, altitude, NOT_PREGNANT, None, "measured before the birth date")
    pregnancy = NOT_PREGNANT
    if sex(patient) == "female" and completed_years(born, measurement.date) >= PREGNANCY_FROM_YEARS:
        pregnancy = await find_pregnancy(context, measurement.patient_id, measurement.date)
    try:
        result = classify_anaemia(
            measurement.value, measurement.unit, birth_date=born, measurement_date=measurement.date,
            sex=sex(patient), altitude_m=altitude.metres, pregnant=pregnancy.pregnant, trimester=pregnancy.trimester,
        )
    except (UnitError, ValueError) as exc:
        return HemoglobinAssessment(measurement, altitude, pregnancy, None, str(exc))
    return HemoglobinAssessment(measurement, altitude, pregnancy, result)


def interpretation_concept(assessment: HemoglobinAssessment) -> dict[str, Any] | None:
    """Observation.interpretation: v3 N / L / LL plus Puente's finer class (mild vs moderate)."""
    result = assessment.result
    if result is None or result.interpretation is None:
        return None
    v3 = result.interpretation
    where = f"altitud {result.altitude_m} m"
    if assessment.altitude.unknown_at:
        where = (f"altitud {result.altitude_m} m por defecto: Location/{assessment.altitude.unknown_at} no registra "
                 "altitud, revisar si está en zona alta")
    if result.group and result.group.startswith("pregnant"):
        where += ", gestante"
    return {
        "coding": [
            {"system": v3.system, "code": v3.code, "display": v3.display},
            {"system": codes.ANAEMIA_CLASSIFICATION_SYSTEM, "code": result.classification.value,
             "display": CLASS_DISPLAY[result.classification]},
        ],
        "text": f"{CLASS_TEXT_ES[result.classification]} ({result.ruleset}, {where})",
    }


def own_anaemia_class(observation: Resource) -> str | None:
    """The anaemia class this server recorded on the Observation, if any."""
    for concept in observation.get("interpretation") or ():
        for coding in codings(concept):
            if coding.get("system") == codes.ANAEMIA_CLASSIFICATION_SYSTEM:
                return str(coding.get("code"))
    return None


def remove_own_interpretation(observation: Resource) -> None:
    """Drop what this server derived before, so a corrected value never keeps a stale class."""
    concepts = observation.get("interpretation")
    if not isinstance(concepts, list):
        return
    kept = [c for c in concepts if not any(x.get("system") == codes.ANAEMIA_CLASSIFICATION_SYSTEM for x in codings(c))]
    if len(kept) != len(concepts):
        if kept:
            observation["interpretation"] = kept
        else:
            del observation["interpretation"]


class HemoglobinInterpreter:
    """EnrichHook: adds the interpretation to a hemoglobin Observation before it is stored."""

    def __init__(self, config: ClinicalConfig) -> None:
        self._config = config

    async def __call__(self, repository: FhirRepository, resource: dict[str, Any]) -> None:
        if resource.get("resourceType") != "Observation":
            return
        remove_own_interpretation(resource)
        measurement = Measurement.from_observation(resource)
        if measurement is None or measurement.kind is not Kind.HEMOGLOBIN:
            return
        context = rules_repository(repository)
        patient = await read_resource(context, "Patient", measurement.patient_id)
        if patient is None:
            return
        assessment = await assess_hemoglobin(context, measurement, patient, self._config.default_altitude_m)
        concept = interpretation_concept(assessment)
        if concept is not None:
            interpretations = resource.get("interpretation")
            resource["interpretation"] = [*(interpretations if isinstance(interpretations, list) else ()), concept]
