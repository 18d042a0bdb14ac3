"""Codes and identifier helpers the generated programme writes; the systems are
fhir_mappings.code_systems', re-exported here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The generator names every system as codes.X, beside the codes and helpers below.
from fhir_mappings.code_systems import *  # noqa: F403
from fhir_mappings.code_systems import DATA_ORIGIN_SYSTEM, IDENTIFIER_TYPE_SYSTEM, SID_CE, SID_CNV, SID_DNI, SID_PTP

# Synthetic data must be recognisable as such wherever it ends up.
SYNTHETIC_TAG = {"system": DATA_ORIGIN_SYSTEM, "code": "synthetic"}

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
        "type": {"coding": [coding(IDENTIFIER_TYPE_SYSTEM, kind, IDENTIFIER_TYPES[kind])], "text": kind},
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
