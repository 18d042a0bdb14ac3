"""What the worklists and indicators read, loaded through the caller's repository in a few statements.

`load_records` takes the patients in scope and reads, for all of them at once, the Observations,
Immunizations, Encounters, pregnancy Conditions, referrals (ServiceRequest + Task) the caller may see:
one statement per type whatever the number of patients (`FhirRepository.referring_to`), never a
query per child. Access rules are the repository's: a CHW's token reads her own catchment only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clinical import codes
from fhir_mappings import fhir_json
from storage.repository import FhirRepository

Resource = dict[str, Any]

HEMOGLOBIN_CODES = (codes.LOINC_HEMOGLOBIN, codes.LOINC_HEMOGLOBIN_CAPILLARY, codes.LOINC_HEMOGLOBIN_VENOUS)
GROWTH_INDICATORS = ("wfa", "lhfa", "wflh")
_OBSERVATION_CODES = [
    *(
        (codes.LOINC, c)
        for c in (*HEMOGLOBIN_CODES, codes.LOINC_BODY_WEIGHT, codes.LOINC_BODY_LENGTH, codes.LOINC_BODY_HEIGHT)
    ),
    *((codes.GROWTH_INDICATOR_SYSTEM, c) for c in GROWTH_INDICATORS),
]
_PREGNANCY_CODES = [(codes.SNOMED, codes.SNOMED_PREGNANT)]


@dataclass
class PatientRecord:
    """One patient's resources, each list oldest first."""

    patient: Resource
    observations: list[Resource] = field(default_factory=list)
    immunizations: list[Resource] = field(default_factory=list)
    encounters: list[Resource] = field(default_factory=list)
    pregnancies: list[Resource] = field(default_factory=list)
    referrals: list[tuple[Resource, Resource | None]] = field(default_factory=list)  # (ServiceRequest, its Task)
    memo: dict[Any, Any] = field(default_factory=dict)  # what rules derive once per record (a forecast)

    @property
    def id(self) -> str:
        return str(self.patient["id"])

    def birth_date(self) -> dt.date | None:
        return parse_day(self.patient.get("birthDate"))


@dataclass
class Records:
    by_patient: dict[str, PatientRecord]

    def __iter__(self) -> Any:
        return iter(self.by_patient[k] for k in sorted(self.by_patient))

    def __len__(self) -> int:
        return len(self.by_patient)


def parse_day(value: Any) -> dt.date | None:
    """The calendar day of a FHIR date or dateTime (its local date as written); None if partial or absent."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def reference_id(reference: Any, resource_type: str) -> str | None:
    value = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(value, str):
        return None
    prefix = f"{resource_type}/"
    tail = value.split("/_history/")[0]
    if prefix not in tail:
        return None
    return tail.rsplit(prefix, 1)[1] or None


def has_coding(concept: Any, system: str, code_values: Iterable[str]) -> bool:
    wanted = set(code_values)
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return any(isinstance(c, dict) and c.get("system") == system and c.get("code") in wanted for c in codings or ())


def coding_code(concept: Any, system: str) -> str | None:
    for c in (concept.get("coding") if isinstance(concept, dict) else None) or ():
        if isinstance(c, dict) and c.get("system") == system and isinstance(c.get("code"), str):
            return str(c["code"])
    return None


def effective_day(resource: Resource) -> dt.date | None:
    for key in ("effectiveDateTime", "occurrenceDateTime", "authoredOn", "recordedDate"):
        if key in resource:
            return parse_day(resource[key])
    for key in ("effectivePeriod", "period"):
        if isinstance(resource.get(key), dict):
            return parse_day(resource[key].get("start"))
    return None


# Ids per statement: a whole programme's patients (60,000 at 1M resources) would pass the drivers'
# bound-parameter limits (32,767 for asyncpg, 32,766 for SQLite) in one IN list.
CHUNK = 5_000


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


async def load_patients(repository: FhirRepository, patient_ids: Sequence[str]) -> list[Resource]:
    out: list[Resource] = []
    for chunk in _chunks(patient_ids):
        versions = await repository.read_many("Patient", chunk)
        out.extend(fhir_json.loads_stored(v.content) for v in versions.values() if not v.deleted and v.content)
    return out


async def _referring(
    repository: FhirRepository,
    resource_type: str,
    param: str,
    target: str,
    ids: Sequence[str],
    codes_: Sequence[tuple[str, str]] = (),
) -> list[Resource]:
    out: list[Resource] = []
    for chunk in _chunks(ids):
        versions = await repository.referring_to(resource_type, param, target, chunk, codes=codes_)
        out.extend(fhir_json.loads_stored(v.content) for v in versions if v.content)
    return out


async def load_records(repository: FhirRepository, patients: Sequence[Resource]) -> Records:
    """Every patient's record, in one statement per resource type (per 5,000 patients)."""
    by_patient = {str(p["id"]): PatientRecord(p) for p in patients}
    ids = sorted(by_patient)

    def owner(resource: Resource, key: str) -> PatientRecord | None:
        found = reference_id(resource.get(key), "Patient")
        return by_patient.get(found) if found else None

    for observation in await _referring(repository, "Observation", "subject", "Patient", ids, _OBSERVATION_CODES):
        if observation.get("status") in ("final", "amended", "corrected", "preliminary"):
            record = owner(observation, "subject")
            if record:
                record.observations.append(observation)
    for immunization in await _referring(repository, "Immunization", "patient", "Patient", ids):
        record = owner(immunization, "patient")
        if record:
            record.immunizations.append(immunization)
    for encounter in await _referring(repository, "Encounter", "subject", "Patient", ids):
        record = owner(encounter, "subject")
        if record:
            record.encounters.append(encounter)
    for condition in await _referring(repository, "Condition", "subject", "Patient", ids, _PREGNANCY_CODES):
        record = owner(condition, "subject")
        if record:
            record.pregnancies.append(condition)
    requests = await _referring(repository, "ServiceRequest", "subject", "Patient", ids)
    tasks: dict[str, Resource] = {}
    for task in await _referring(repository, "Task", "focus", "ServiceRequest", [str(r["id"]) for r in requests]):
        focus = reference_id(task.get("focus"), "ServiceRequest")
        if focus:
            tasks[focus] = task  # the latest written wins (oldest first)
    for request in requests:
        record = owner(request, "subject")
        if record:
            record.referrals.append((request, tasks.get(str(request["id"]))))
    return Records(by_patient)
