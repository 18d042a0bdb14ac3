"""Code systems, codes and identifier systems used by the generated programme.

Standard systems are the FHIR canonical URIs. Puente's own systems (identifiers, local codes) live
under one base URI; they should follow whatever `fhir_mappings` publishes once it has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
BCP47 = "urn:ietf:bcp:47"

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
IMMUNIZATION_ORIGIN = "http://terminology.hl7.org/CodeSystem/immunization-origin"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
FATHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-fathers-family"
MOTHERS_FAMILY = "http://hl7.org/fhir/StructureDefinition/humanname-mothers-family"

PUENTE = "https://puente.example.org/fhir"
SID_DNI = f"{PUENTE}/sid/pe-dni"
SID_CE = f"{PUENTE}/sid/pe-ce"
SID_PTP = f"{PUENTE}/sid/pe-ptp"
SID_CNV = f"{PUENTE}/sid/pe-cnv"
SID_RENIPRESS = f"{PUENTE}/sid/pe-renipress"
SID_DEVICE_SERIAL = f"{PUENTE}/sid/device-serial"
CS_IDENTIFIER_TYPE = f"{PUENTE}/CodeSystem/identifier-type"
CS_ROLE = f"{PUENTE}/CodeSystem/programme-role"
CS_VISIT = f"{PUENTE}/CodeSystem/visit-type"
CS_VACCINE = f"{PUENTE}/CodeSystem/pe-vacunas"  # as clinical.codes.PE_VACCINE_SYSTEM

# Synthetic data must be recognisable as such wherever it ends up.
SYNTHETIC_TAG = {"system": f"{PUENTE}/CodeSystem/data-origin", "code": "synthetic"}

IDENTIFIER_TYPES = {
    "DNI": "Documento Nacional de Identidad",
    "CE": "Carné de Extranjería",
    "PTP": "Permiso Temporal de Permanencia",
    "CNV": "Certificado de Nacido Vivo",
}


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        cc["text"] = text
    return cc


def identifier(kind: str, value: str) -> dict[str, Any]:
    system = {"DNI": SID_DNI, "CE": SID_CE, "PTP": SID_PTP, "CNV": SID_CNV}[kind]
    return {
        "use": "official",
        "type": {"coding": [coding(CS_IDENTIFIER_TYPE, kind, IDENTIFIER_TYPES[kind])], "text": kind},
        "system": system,
        "value": value,
    }


@dataclass(frozen=True, slots=True)
class Measure:
    loinc: str
    display: str
    text: str
    unit: str
    category: str


WEIGHT = Measure("29463-7", "Body weight", "Peso", "kg", "vital-signs")
LENGTH_LYING = Measure("8306-3", "Body height --lying", "Talla (echado)", "cm", "vital-signs")
HEIGHT_STANDING = Measure("8302-2", "Body height", "Talla (de pie)", "cm", "vital-signs")
HEMOGLOBIN = Measure("718-7", "Hemoglobin [Mass/volume] in Blood", "Hemoglobina", "g/dL", "laboratory")
GESTATIONAL_AGE = Measure("49051-6", "Gestational age in weeks", "Edad gestacional", "wk", "exam")

CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "laboratory": "Laboratory", "exam": "Exam",
                    "social-history": "Social History"}

PREGNANCY_SNOMED = ("77386006", "Pregnant")
PREGNANCY_STATUS = ("82810-3", "Pregnancy status")
PREGNANT_ANSWER = ("LA15173-0", "Pregnant")
EDD = ("11778-8", "Delivery date Estimated")
REFERRAL_SNOMED = ("3457005", "Patient referral")
FERROUS_SULFATE = ("B03AA07", "ferrous sulfate")
FOLIC_ACID = ("B03BB01", "folic acid")
