"""Codes that clinical results carry; their systems come from fhir_mappings.code_systems.

Plain values only (no FHIR objects): the API layer turns a `Coding` into FHIR JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings import code_systems

# The systems the rules name as codes.X (fhir_mappings.code_systems holds them all).
ANAEMIA_CLASSIFICATION_SYSTEM = code_systems.ANAEMIA_CLASSIFICATION_SYSTEM
CLINICAL_FLAG_SYSTEM = code_systems.CLINICAL_FLAG_SYSTEM
CVX = code_systems.CVX
DATA_ORIGIN_SYSTEM = code_systems.DATA_ORIGIN_SYSTEM
FLAG_CATEGORY = code_systems.FLAG_CATEGORY
FLAG_DETAIL_EXTENSION = code_systems.FLAG_DETAIL_EXTENSION
GROWTH_CLASSIFICATION_SYSTEM = code_systems.GROWTH_CLASSIFICATION_SYSTEM
GROWTH_INDICATOR_SYSTEM = code_systems.GROWTH_INDICATOR_SYSTEM
IMMDS_FORECAST_OPERATION = code_systems.IMMDS_FORECAST_OPERATION
IMMDS_FORECAST_STATUS = code_systems.IMMDS_FORECAST_STATUS
IMMUNIZATION_EVALUATION_DOSE_STATUS = code_systems.IMMUNIZATION_EVALUATION_DOSE_STATUS
IMMUNIZATION_RECOMMENDATION_STATUS = code_systems.IMMUNIZATION_RECOMMENDATION_STATUS
LOINC = code_systems.LOINC
OBSERVATION_CATEGORY = code_systems.OBSERVATION_CATEGORY
OPERATION_DEFINITION_BASE = code_systems.OPERATION_DEFINITION_BASE
PE_VACCINE_SYSTEM = code_systems.PE_VACCINE_SYSTEM
PUENTE_CODE_SYSTEM_BASE = code_systems.PUENTE_CODE_SYSTEM_BASE
PUENTE_FHIR_BASE = code_systems.PUENTE_FHIR_BASE
RESIDENCE_LOCATION_EXTENSION = code_systems.RESIDENCE_LOCATION_EXTENSION
RULESET_SYSTEM = code_systems.RULESET_SYSTEM
SNOMED = code_systems.SNOMED
UCUM = code_systems.UCUM
V3_OBSERVATION_INTERPRETATION = code_systems.V3_OBSERVATION_INTERPRETATION


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None


INTERPRETATION_NORMAL = Coding(V3_OBSERVATION_INTERPRETATION, "N", "Normal")
INTERPRETATION_LOW = Coding(V3_OBSERVATION_INTERPRETATION, "L", "Low")
INTERPRETATION_CRITICAL_LOW = Coding(V3_OBSERVATION_INTERPRETATION, "LL", "Critical low")

# ImmunizationRecommendation.recommendation.dateCriterion.code (FHIR value set
# immunization-recommendation-date-criterion, LOINC).
DATE_CRITERION_EARLIEST = Coding(LOINC, "30981-5", "Earliest date to give")
DATE_CRITERION_DUE = Coding(LOINC, "30980-7", "Date vaccine due")
DATE_CRITERION_OVERDUE = Coding(LOINC, "59778-1", "Date when overdue for immunization")
DATE_CRITERION_LATEST = Coding(LOINC, "59777-3", "Latest date to give immunization")

# Observation codes the integration matches on (domain.md §4).
LOINC_HEMOGLOBIN = "718-7"
LOINC_HEMOGLOBIN_CAPILLARY = "30352-9"
LOINC_HEMOGLOBIN_VENOUS = "30350-3"
LOINC_BODY_WEIGHT = "29463-7"
LOINC_BODY_HEIGHT = "8302-2"
LOINC_BODY_LENGTH = "8306-3"
LOINC_HEAD_CIRCUMFERENCE = "9843-4"
LOINC_MUAC = "56072-2"
LOINC_PREGNANCY_STATUS = "82810-3"
LOINC_ESTIMATED_DELIVERY_DATE = "11778-8"
LOINC_GESTATIONAL_AGE_WEEKS = "49051-6"
SNOMED_ANAEMIA = "271737000"
SNOMED_PREGNANT = "77386006"

# --- used by the API integration (api/clinical) -------------------------------------------------

SNOMED_PATIENT_REFERRAL = "3457005"
LOINC_PREGNANT_ANSWER = "LA15173-0"
