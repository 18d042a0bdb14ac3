"""Worklist rules: who a CHW should visit this month, and why. Pure functions of the loaded records.

Every rule judges the records as they stood on the period's last day (`as_of`); anything dated later
is ignored, so last month's list can be replayed. The reasons, with the rule behind each:

- `screening-due`: a child from six months to five years not weighed (the growth screening) in the
  182 days up to `as_of` (younger children cannot have gone six months unscreened);
- `anaemia-follow-up`: a child under five whose latest hemoglobin Puente classified anaemic (mild,
  moderate, severe): no control since;
- `pregnancy-visit`: a woman pregnant on `as_of` (pregnancy Condition begun, not ended) with no
  Encounter (finished or in progress) in the period;
- `newborn-visits`: a child born in the period or the 28 days before it with fewer Encounters since
  birth than home visits due by `as_of` (days 3, 7 and 28);
- `vaccine-overdue`: a child under five with a series the schedule's forecast (clinical.immunization)
  calls overdue on `as_of`;
- `referral-open`: an active or on-hold referral authored by `as_of` whose Task has no outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clinical import codes
from clinical.immunization import AdministeredDose, ForecastStatus, forecast_immunizations
from programme.period import Period
from programme.records import (
    HEMOGLOBIN_CODES,
    PatientRecord,
    Records,
    Resource,
    coding_code,
    effective_day,
    has_coding,
    parse_day,
)

UNDER_FIVE_DAYS = 1826
SCREENING_EVERY_DAYS = 182
NEWBORN_VISIT_DAYS = (3, 7, 28)
ANAEMIC = frozenset({"mild", "moderate", "severe"})
TASK_OUTCOMES = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
VISIT_STATUSES = frozenset({"finished", "in-progress", "arrived", "triaged", "onleave"})

REASONS = {  # code: (Spanish, English)
    "screening-due": ("Tamizaje de crecimiento y hemoglobina pendiente", "Growth and hemoglobin screening due"),
    "anaemia-follow-up": ("Anemia sin control de hemoglobina", "Anaemia without a follow-up hemoglobin"),
    "pregnancy-visit": ("Gestante sin visita este mes", "Pregnant woman without a visit this month"),
    "newborn-visits": ("Visitas al recién nacido pendientes", "Newborn home visits due"),
    "vaccine-overdue": ("Vacunas vencidas", "Overdue vaccines"),
    "referral-open": ("Referencia sin resultado", "Open referral without an outcome"),
}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str  # in Spanish, for the CHW
    focus: str | None = None  # the resource the reason is about (a ServiceRequest, an Observation)


@dataclass(frozen=True, slots=True)
class Entry:
    patient: Resource
    reasons: tuple[Reason, ...]

    @property
    def patient_id(self) -> str:
        return str(self.patient["id"])


def worklist(records: Records, period: Period) -> list[Entry]:
    """The entries (patients with at least one reason), ordered by patient id."""
    out = []
    for record in records:
        reasons = patient_reasons(record, period)
        if reasons:
            out.append(Entry(record.patient, tuple(reasons)))
    return out


def patient_reasons(record: PatientRecord, period: Period) -> list[Reason]:
    as_of = period.last_day
    born = record.birth_date()
    reasons: list[Reason] = []
    if born is not None and 0 <= (as_of - born).days < UNDER_FIVE_DAYS:
        reasons.extend(_screening(record, born, as_of))
        reasons.extend(_anaemia(record, as_of))
        reasons.extend(_newborn(record, born, period))
        reasons.extend(_vaccines(record, born, as_of))
    reasons.extend(_pregnancy(record, period))
    reasons.extend(_referrals(record, as_of))
    return reasons


def _dated(resources: list[Resource], as_of: dt.date) -> list[tuple[dt.date, Resource]]:
    out = [(day, r) for r in resources if (day := effective_day(r)) is not None and day <= as_of]
    out.sort(key=lambda pair: pair[0])
    return out


def _screening(record: PatientRecord, born: dt.date, as_of: dt.date) -> list[Reason]:
    if (as_of - born).days <= SCREENING_EVERY_DAYS:
        return []
    weights = [
        (d, o)
        for d, o in _dated(record.observations, as_of)
        if has_coding(o.get("code"), codes.LOINC, (codes.LOINC_BODY_WEIGHT,))
    ]
    if not weights:
        return [Reason("screening-due", "Nunca tamizado")]
    last = weights[-1][0]
    if (as_of - last).days > SCREENING_EVERY_DAYS:
        return [Reason("screening-due", f"Último tamizaje el {last.isoformat()}")]
    return []


def anaemia_class(observation: Resource) -> str | None:
    """The anaemia class Puente recorded on a hemoglobin Observation (none, mild, moderate, severe...)."""
    for concept in observation.get("interpretation") or ():
        found = coding_code(concept, codes.ANAEMIA_CLASSIFICATION_SYSTEM)
        if found:
            return found
    return None


def hemoglobins(record: PatientRecord, as_of: dt.date) -> list[tuple[dt.date, Resource]]:
    return [
        (d, o)
        for d, o in _dated(record.observations, as_of)
        if has_coding(o.get("code"), codes.LOINC, HEMOGLOBIN_CODES)
    ]


def _anaemia(record: PatientRecord, as_of: dt.date) -> list[Reason]:
    found = hemoglobins(record, as_of)
    if not found:
        return []
    day, latest = found[-1]
    severity = anaemia_class(latest)
    if severity not in ANAEMIC:
        return []
    value = (latest.get("valueQuantity") or {}).get("value")
    label = {"mild": "leve", "moderate": "moderada", "severe": "severa"}[severity]
    return [
        Reason(
            "anaemia-follow-up",
            f"Anemia {label} (Hb {value}) el {day.isoformat()}, sin control posterior",
            f"Observation/{latest['id']}",
        )
    ]


def _newborn(record: PatientRecord, born: dt.date, period: Period) -> list[Reason]:
    as_of = period.last_day
    if born > as_of or born + dt.timedelta(days=NEWBORN_VISIT_DAYS[-1]) < period.start:
        return []
    due = sum(1 for d in NEWBORN_VISIT_DAYS if born + dt.timedelta(days=d) <= as_of)
    done = sum(
        1
        for day, e in _dated(record.encounters, as_of)
        if e.get("status") in VISIT_STATUSES and born <= day <= born + dt.timedelta(days=NEWBORN_VISIT_DAYS[-1])
    )
    if done >= due or due == 0:
        return []
    return [Reason("newborn-visits", f"{done} de {due} visitas al recién nacido realizadas (días 3, 7 y 28)")]


def doses_given(immunizations: list[Resource], as_of: dt.date) -> list[AdministeredDose]:
    """Completed doses up to `as_of`, coded locally (Peru) or by CVX (as the $immds-forecast operation reads them)."""
    doses = []
    for immunization in immunizations:
        if immunization.get("status") != "completed" or immunization.get("isSubpotent") is True:
            continue
        given = parse_day(immunization.get("occurrenceDateTime"))
        concept = immunization.get("vaccineCode")
        local, cvx = coding_code(concept, codes.PE_VACCINE_SYSTEM), coding_code(concept, codes.CVX)
        if given is None or given > as_of or not (local or cvx):
            continue
        doses.append(
            AdministeredDose(
                vaccine_code=local or str(cvx),
                date=given,
                system=None if local else codes.CVX,
                id=immunization.get("id"),
            )
        )
    return doses


def _vaccines(record: PatientRecord, born: dt.date, as_of: dt.date) -> list[Reason]:
    forecast = forecast_immunizations(
        birth_date=born, assessment_date=as_of, doses=doses_given(record.immunizations, as_of)
    )
    overdue = [r for r in forecast.recommendations if r.status is ForecastStatus.OVERDUE]
    if not overdue:
        return []
    names = ", ".join(r.dose_label or f"{r.series_display} {r.dose_number}" for r in overdue)
    return [Reason("vaccine-overdue", names)]


def _pregnancy(record: PatientRecord, period: Period) -> list[Reason]:
    if not any(pregnant_on(c, period.last_day) for c in record.pregnancies):
        return []
    if any(
        e.get("status") in VISIT_STATUSES and (d := effective_day(e)) is not None and period.contains(d)
        for e in record.encounters
    ):
        return []
    return [Reason("pregnancy-visit", "Sin visita domiciliaria registrada en el mes")]


def pregnant_on(condition: Resource, day: dt.date) -> bool:
    """A pregnancy Condition that had begun and not ended (abatement, or a resolved status) on `day`."""
    if coding_code(condition.get("verificationStatus"), _VERIFICATION) in ("entered-in-error", "refuted"):
        return False
    onset = parse_day(condition.get("onsetDateTime")) or parse_day(condition.get("recordedDate"))
    if onset is None or onset > day:
        return False
    ended = parse_day(condition.get("abatementDateTime"))
    if ended is not None:
        return ended > day
    return coding_code(condition.get("clinicalStatus"), _CLINICAL) in ("active", "recurrence", "relapse", None)


def _referrals(record: PatientRecord, as_of: dt.date) -> list[Reason]:
    out = []
    for request, task in record.referrals:
        if request.get("status") not in ("active", "on-hold") or request.get("intent") not in ("order", "plan"):
            continue
        authored = parse_day(request.get("authoredOn"))
        if authored is None or authored > as_of:
            continue
        if task is not None and task.get("status") in TASK_OUTCOMES:
            continue
        state = (task or {}).get("businessStatus", {}).get("text") or (task or {}).get("status") or "sin tarea"
        what = (request.get("code") or {}).get("text") or "Referencia"
        out.append(
            Reason("referral-open", f"{what} ({authored.isoformat()}): {state}", f"ServiceRequest/{request['id']}")
        )
    return out
