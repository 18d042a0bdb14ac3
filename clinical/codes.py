"""Code systems and codes that clinical results carry. Every URI lives here and nowhere else.

Plain values only (no FHIR objects): the API layer turns a `Coding` into FHIR JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
V3_OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# FHIR R4 core status codes for ImmunizationRecommendation.recommendation.forecastStatus.
IMMUNIZATION_RECOMMENDATION_STATUS = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
# HL7 Immunization Decision Support Forecast IG (ImmDS) forecast status code system.
IMMDS_FORECAST_STATUS = "http://hl7.org/fhir/us/immds/CodeSystem/ForecastStatus"

# Puente's own code systems. Peru has no national FHIR vaccine code system (domain.md §4), so
# Puente publishes one; the base is configurable later by changing it here only.
PUENTE_CODE_SYSTEM_BASE = "https://puente.example.org/fhir/CodeSystem"
PE_VACCINE_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/pe-vacunas"
GROWTH_INDICATOR_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/growth-indicator"
GROWTH_CLASSIFICATION_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/growth-classification"
ANAEMIA_CLASSIFICATION_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/anaemia-classification"


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
PUENTE_FHIR_BASE = "https://puente.example.org/fhir"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
# Core R4 extension on Flag: the records that support it.
FLAG_DETAIL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-detail"
IMMUNIZATION_EVALUATION_DOSE_STATUS = "http://terminology.hl7.org/CodeSystem/immunization-evaluation-dose-status"
# Same system the demo seed uses for its "synthetic" tag; "derived" marks what the rules wrote.
DATA_ORIGIN_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/data-origin"
CLINICAL_FLAG_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/clinical-flag"
RULESET_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/ruleset"
# Patient extension (valueReference to a Location) naming where the patient lives; its altitude
# drives the hemoglobin adjustment.
RESIDENCE_LOCATION_EXTENSION = f"{PUENTE_FHIR_BASE}/StructureDefinition/residence-location"
OPERATION_DEFINITION_BASE = f"{PUENTE_FHIR_BASE}/OperationDefinition"
IMMDS_FORECAST_OPERATION = "http://hl7.org/fhir/us/immds/OperationDefinition/immds-forecast"

SNOMED_PATIENT_REFERRAL = "3457005"
LOINC_PREGNANT_ANSWER = "LA15173-0"
