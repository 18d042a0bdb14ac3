"""Reading the FHIR elements the rules need (codes, subjects, dates, quantities) into plain values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clinical import codes
from clinical.units import to_decimal

Resource = dict[str, Any]

# Observation statuses whose value stands; entered-in-error, cancelled etc. undo what was derived.
USABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


class Kind(StrEnum):
    HEMOGLOBIN = "hemoglobin"
    WEIGHT = "weight"
    LENGTH = "length"  # lying (recumbent)
    HEIGHT = "height"  # standing
    HEAD = "head-circumference"
    MUAC = "muac"


KIND_BY_LOINC = {
    codes.LOINC_HEMOGLOBIN: Kind.HEMOGLOBIN,
    codes.LOINC_HEMOGLOBIN_CAPILLARY: Kind.HEMOGLOBIN,
    codes.LOINC_HEMOGLOBIN_VENOUS: Kind.HEMOGLOBIN,
    codes.LOINC_BODY_WEIGHT: Kind.WEIGHT,
    codes.LOINC_BODY_LENGTH: Kind.LENGTH,
    codes.LOINC_BODY_HEIGHT: Kind.HEIGHT,
    codes.LOINC_HEAD_CIRCUMFERENCE: Kind.HEAD,
    codes.LOINC_MUAC: Kind.MUAC,
}
HEMOGLOBIN_LOINC = tuple(code for code, kind in KIND_BY_LOINC.items() if kind is Kind.HEMOGLOBIN)
GROWTH_LOINC = tuple(code for code, kind in KIND_BY_LOINC.items() if kind is not Kind.HEMOGLOBIN)


def codings(concept: Any) -> Iterator[Resource]:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict):
                yield coding


def has_code(concept: Any, system: str, wanted: Collection[str]) -> bool:
    return any(c.get("system") == system and c.get("code") in wanted for c in codings(concept))


def parse_date(value: Any) -> dt.date | None:
    """The calendar date of a FHIR date/dateTime/instant as written (local date); None if partial."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value)
    if match is None:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id in a relative literal reference to `resource_type` ("Patient/x", "Patient/x/_history/2").

    Absolute URLs are not followed: one may name another server's Patient/x, and a wrong patient is
    worse than none.
    """
    if not isinstance(reference, dict):
        return None
    value = reference.get("reference")
    if not isinstance(value, str):
        return None
    parts = value.split("/_history/")[0].split("/")
    if len(parts) == 2 and parts[0] == resource_type and parts[1]:
        return parts[1]
    return None


def effective(observation: Resource) -> str | None:
    """The raw effective[x] timestamp (a Period's start, else its end)."""
    for key in ("effectiveDateTime", "effectiveInstant"):
        if isinstance(observation.get(key), str):
            return str(observation[key])
    period = observation.get("effectivePeriod")
    if isinstance(period, dict):
        for key in ("start", "end"):
            if isinstance(period.get(key), str):
                return str(period[key])
    return None


def quantity(element: Any) -> tuple[Decimal, str] | None:
    """(value, UCUM unit) of a valueQuantity; the unit is the UCUM code, else the display unit."""
    if not isinstance(element, dict):
        return None
    q = element.get("valueQuantity")
    if not isinstance(q, dict):
        return None
    value = q.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    unit = q.get("code") if isinstance(q.get("code"), str) else q.get("unit")
    if not isinstance(unit, str):
        return None
    return to_decimal(value), unit


def usable(observation: Resource) -> bool:
    return observation.get("status") in USABLE_STATUSES and "dataAbsentReason" not in observation


def birth_date(patient: Resource) -> dt.date | None:
    value = patient.get("birthDate")
    return parse_date(value) if isinstance(value, str) and len(value) == 10 else None


def sex(patient: Resource) -> str | None:
    gender = patient.get("gender")
    return gender if gender in ("male", "female") else None


@dataclass(frozen=True, slots=True)
class Measurement:
    """One usable measurement Observation of a patient, in the terms the rules read."""

    id: str
    kind: Kind
    patient_id: str
    date: dt.date
    when: str  # raw effective timestamp: orders measurements taken on the same day
    value: Decimal
    unit: str
    status: str
    encounter_id: str | None = None

    @property
    def reference(self) -> str:
        return f"Observation/{self.id}"

    @classmethod
    def from_observation(cls, observation: Resource | None) -> Measurement | None:
        """None unless this is a usable measurement of a Patient with a date and a quantity."""
        if not observation or observation.get("resourceType") != "Observation" or not usable(observation):
            return None
        kind = measurement_kind(observation)
        if kind is None:  # most Observations written with a measurement are its derived z-scores
            return None
        patient_id = reference_id(observation.get("subject"), "Patient")
        when = effective(observation)
        day = parse_date(when)
        value = quantity(observation)
        if patient_id is None or when is None or day is None or value is None:
            return None
        return cls(
            id=str(observation.get("id") or ""), kind=kind, patient_id=patient_id, date=day, when=when,
            value=value[0], unit=value[1], status=str(observation["status"]),
            encounter_id=reference_id(observation.get("encounter"), "Encounter"),
        )


def measurement_kind(observation: Resource) -> Kind | None:
    for coding in codings(observation.get("code")):
        if coding.get("system") == codes.LOINC and coding.get("code") in KIND_BY_LOINC:
            return KIND_BY_LOINC[coding["code"]]
    return None
