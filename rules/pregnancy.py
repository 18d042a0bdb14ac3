"""Is the woman pregnant on a date, and in which trimester? From her stored pregnancy record.

Pregnant when, on that date, a pregnancy Condition (SNOMED 77386006) covers it, or her latest
pregnancy-status Observation (LOINC 82810-3) of the last 42 weeks answers "pregnant" (LA15173-0).
Dating, most recent record first: an estimated delivery date (LOINC 11778-8) or a gestational age
(LOINC 49051-6), as separate Observations or as components of the status Observation, then the
Condition's onset taken as the start of pregnancy (the demo seed records the LMP there). A dating
that gives a gestational age outside 0-44 weeks on the date belongs to another pregnancy and is
ignored; without a dating the trimester is unknown and the anaemia rules say what that means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from clinical import codes, trimester_from_gestational_weeks
from clinical.immunization import PREGNANCY_DAYS
from rules.fhir_in import Resource, codings, effective, has_code, parse_date, quantity, usable
from rules.lookup import patient_resources
from storage.repository import FhirRepository

STATUS_VALID_DAYS = 42 * 7
MAX_GESTATION_DAYS = 44 * 7
_ACTIVE = {"active", "recurrence", "relapse"}
_NOT_TRUE = {"refuted", "entered-in-error"}
_DATING = (codes.LOINC_ESTIMATED_DELIVERY_DATE, codes.LOINC_GESTATIONAL_AGE_WEEKS)


@dataclass(frozen=True)
class PregnancyState:
    pregnant: bool
    gestational_days: int | None = None
    trimester: int | None = None
    evidence: tuple[str, ...] = ()  # references of the records that say so


NOT_PREGNANT = PregnancyState(False)


async def find_pregnancy(repository: FhirRepository, patient_id: str, on: dt.date) -> PregnancyState:
    conditions = await patient_resources(
        repository, "Condition", patient_id, coded=[(codes.SNOMED, codes.SNOMED_PREGNANT)]
    )
    observations = await patient_resources(
        repository, "Observation", patient_id,
        coded=[(codes.LOINC, c) for c in (codes.LOINC_PREGNANCY_STATUS, *_DATING)],
    )
    return pregnancy_on(on, conditions, observations)


def pregnancy_on(on: dt.date, conditions: list[Resource], observations: list[Resource]) -> PregnancyState:
    evidence: list[str] = []
    starts: list[tuple[str, dt.date]] = []  # (when recorded, start of pregnancy), for dating

    for condition in conditions:
        if not has_code(condition.get("code"), codes.SNOMED, {codes.SNOMED_PREGNANT}):
            continue
        if _code(condition.get("verificationStatus")) in _NOT_TRUE:
            continue
        onset = parse_date(condition.get("onsetDateTime")) or parse_date(
            (condition.get("onsetPeriod") or {}).get("start"))
        abatement = parse_date(condition.get("abatementDateTime")) or parse_date(
            (condition.get("abatementPeriod") or {}).get("start"))
        if onset is not None and onset > on:
            continue
        # Without an abatement date, only the current clinical status can say it has not ended.
        covers = on < abatement if abatement is not None else _code(condition.get("clinicalStatus")) in _ACTIVE
        if covers:
            evidence.append(f"Condition/{condition.get('id')}")
            if onset is not None:
                recorded = condition.get("recordedDate") or onset.isoformat()
                starts.append((str(recorded), onset))

    status: tuple[str, Resource] | None = None
    for obs in observations:
        when = effective(obs)
        day = parse_date(when)
        if not usable(obs) or when is None or day is None or day > on:
            continue
        if has_code(obs.get("code"), codes.LOINC, {codes.LOINC_PREGNANCY_STATUS}):
            if (on - day).days <= STATUS_VALID_DAYS and (status is None or when > status[0]):
                status = (when, obs)
            for component in obs.get("component") or ():
                start = _dating_start(component, day)
                if start is not None:
                    starts.append((when, start))
        else:
            start = _dating_start(obs, day)
            if start is not None:
                starts.append((when, start))
    if status is not None and has_code(status[1].get("valueCodeableConcept"), codes.LOINC,
                                       {codes.LOINC_PREGNANT_ANSWER}):
        evidence.append(f"Observation/{status[1].get('id')}")

    if not evidence:
        return NOT_PREGNANT
    for _recorded, start in sorted(starts, key=lambda pair: pair[0], reverse=True):
        days = (on - start).days
        if 0 <= days < MAX_GESTATION_DAYS:
            weeks = Decimal(days) / 7
            return PregnancyState(True, days, trimester_from_gestational_weeks(weeks), tuple(evidence))
    return PregnancyState(True, evidence=tuple(evidence))


def _code(concept: object) -> str | None:
    return next((c.get("code") for c in codings(concept)), None)


def _dating_start(element: Resource, measured_on: dt.date) -> dt.date | None:
    """Start of pregnancy (LMP) implied by an EDD or gestational-age element, if it is one."""
    concept = element.get("code")
    if has_code(concept, codes.LOINC, {codes.LOINC_ESTIMATED_DELIVERY_DATE}):
        edd = parse_date(element.get("valueDateTime"))
        return None if edd is None else edd - dt.timedelta(days=PREGNANCY_DAYS)
    if has_code(concept, codes.LOINC, {codes.LOINC_GESTATIONAL_AGE_WEEKS}):
        value = quantity(element)
        if value is None:
            return None
        amount, unit = value
        days = {"wk": amount * 7, "d": amount}.get(unit)
        if days is None or days < 0:
            return None
        return measured_on - dt.timedelta(days=int(days))
    return None
