"""Every code system, identifier system and extension URI Puente writes or matches on, once.

Standard ones are their FHIR canonical URIs; Puente's own live under one base (`PUENTE_FHIR_BASE`),
so moving them to a programme's real domain is a change here only. `clinical.codes` (what clinical
results carry) and `seed.codes` (what the demo programme writes) take their systems from here.
"""

from __future__ import annotations

# ---- terminologies
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
ATC = "http://www.whocc.no/atc"
BCP47 = "urn:ietf:bcp:47"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"

# ---- HL7 code systems (terminology.hl7.org and FHIR core)
_THO = "http://terminology.hl7.org/CodeSystem"
V3_OBSERVATION_INTERPRETATION = f"{_THO}/v3-ObservationInterpretation"
V3_OBSERVATION_VALUE = f"{_THO}/v3-ObservationValue"
OBSERVATION_CATEGORY = f"{_THO}/observation-category"
FLAG_CATEGORY = f"{_THO}/flag-category"
CONDITION_CLINICAL = f"{_THO}/condition-clinical"
CONDITION_VERIFICATION = f"{_THO}/condition-ver-status"
CONDITION_CATEGORY = f"{_THO}/condition-category"
ACT_CODE = f"{_THO}/v3-ActCode"
ACT_REASON = f"{_THO}/v3-ActReason"
ROLE_CODE = f"{_THO}/v3-RoleCode"
PARTICIPATION_TYPE = f"{_THO}/v3-ParticipationType"
ORGANIZATION_TYPE = f"{_THO}/organization-type"
LOCATION_PHYSICAL_TYPE = f"{_THO}/location-physical-type"
IMMUNIZATION_ORIGIN = f"{_THO}/immunization-origin"
IMMUNIZATION_RECOMMENDATION_STATUS = f"{_THO}/immunization-recommendation-status"
IMMUNIZATION_EVALUATION_DOSE_STATUS = f"{_THO}/immunization-evaluation-dose-status"
AUDIT_EVENT_TYPE = f"{_THO}/audit-event-type"
SECURITY_SOURCE_TYPE = f"{_THO}/security-source-type"
RESTFUL_SECURITY_SERVICE = f"{_THO}/restful-security-service"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
IMMDS_FORECAST_STATUS = "http://hl7.org/fhir/us/immds/CodeSystem/ForecastStatus"
IMMDS_FORECAST_OPERATION = "http://hl7.org/fhir/us/immds/OperationDefinition/immds-forecast"

# ---- core extensions
FLAG_DETAIL_EXTENSION = "http://hl7.org/fhir/StructureDefinition/flag-detail"
FATHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-fathers-family"
MOTHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-mothers-family"

# ---- Puente's own
PUENTE_FHIR_BASE = "https://puente.example.org/fhir"
PUENTE_CODE_SYSTEM_BASE = f"{PUENTE_FHIR_BASE}/CodeSystem"
# Peru has no national FHIR vaccine code system (domain.md section 4), so Puente publishes one.
PE_VACCINE_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/pe-vacunas"
GROWTH_INDICATOR_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/growth-indicator"
GROWTH_CLASSIFICATION_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/growth-classification"
ANAEMIA_CLASSIFICATION_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/anaemia-classification"
DATA_ORIGIN_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/data-origin"  # "synthetic" (the seed), "derived" (the rules)
CLINICAL_FLAG_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/clinical-flag"
RULESET_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/ruleset"
IDENTIFIER_TYPE_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/identifier-type"
PROGRAMME_ROLE_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/programme-role"
VISIT_TYPE_SYSTEM = f"{PUENTE_CODE_SYSTEM_BASE}/visit-type"
# Patient extension (valueReference to a Location) naming where the patient lives; its altitude
# drives the hemoglobin adjustment.
RESIDENCE_LOCATION_EXTENSION = f"{PUENTE_FHIR_BASE}/StructureDefinition/residence-location"
OPERATION_DEFINITION_BASE = f"{PUENTE_FHIR_BASE}/OperationDefinition"

# ---- identifier systems (Peru's documents, facilities, devices)
SID_DNI = f"{PUENTE_FHIR_BASE}/sid/pe-dni"
SID_CE = f"{PUENTE_FHIR_BASE}/sid/pe-ce"
SID_PTP = f"{PUENTE_FHIR_BASE}/sid/pe-ptp"
SID_CNV = f"{PUENTE_FHIR_BASE}/sid/pe-cnv"
SID_RENIPRESS = f"{PUENTE_FHIR_BASE}/sid/pe-renipress"
SID_DEVICE_SERIAL = f"{PUENTE_FHIR_BASE}/sid/device-serial"
