"""Programme indicators as FHIR Measures, evaluated into MeasureReports over the loaded records.

Each indicator is a proportion; a `Definition` names its groups and, per group, a function that
sorts one patient's record into (denominator, numerator) for the period. Who counts:

- `puente-screening-coverage`: children under five on the period's last day / weighed (screened) in it;
- `puente-anaemia-prevalence`: children 6-59 months with a classified hemoglobin in the period (the
  latest) / anaemic, in four groups: any, mild, moderate, severe;
- `puente-stunting-prevalence`, `-wasting-`, `-underweight-`: children under five with a plausible
  lhfa, wflh or wfa z-score in the period (the latest) / z < -2, and (group `severe`) z < -3;
- `puente-vaccine-coverage`: per dose of the schedule, children under five who reached the dose's
  recommended age / with the dose given (valid by the schedule) by the period's last day;
- `puente-referral-completion`: referrals (ServiceRequest, intent order or plan) authored in the
  period / completed (Task or ServiceRequest) by its end; group `time-to-completion`: median days.

Unit of counting: patients, except for referral completion (referrals, listed by their patient).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from clinical import codes
from clinical.immunization import forecast_immunizations, load_schedule
from fhir_mappings.outcomes import NotFound
from programme.period import Period
from programme.records import PatientRecord, Records, Resource, coding_code, effective_day, has_coding, parse_day
from programme.worklist import UNDER_FIVE_DAYS, anaemia_class, doses_given, hemoglobins

MEASURE_BASE = f"{codes.PUENTE_FHIR_BASE}/Measure"
GROUP_SYSTEM = f"{codes.PUENTE_CODE_SYSTEM_BASE}/measure-group"
POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
SUBJECT_EXTENSION = f"{codes.PUENTE_FHIR_BASE}/StructureDefinition/measure-subject"
SIX_MONTHS_DAYS = 183
COMPLETED = "completed"

# A patient's verdict in one group: None = not in the denominator; else (in the numerator?, subject, value)
Verdict = list[tuple[bool, str, Decimal | None]]
Judge = Callable[[PatientRecord, Period], Verdict]


@dataclass(frozen=True)
class Group:
    code: str
    title: str  # Spanish
    denominator: str
    numerator: str
    judge: Judge
    score_unit: str = "%"  # "%" proportions; "d" the median of the numerator's values, in days


@dataclass(frozen=True)
class Definition:
    id: str
    title: str  # Spanish
    description: str
    groups: tuple[Group, ...]


def _age_days(record: PatientRecord, day: dt.date) -> int | None:
    born = record.birth_date()
    return None if born is None else (day - born).days


def _under_five(record: PatientRecord, day: dt.date) -> bool:
    age = _age_days(record, day)
    return age is not None and 0 <= age < UNDER_FIVE_DAYS


def _in_period(resources: list[Resource], period: Period) -> list[tuple[dt.date, Resource]]:
    found = [(d, r) for r in resources if (d := effective_day(r)) is not None and period.contains(d)]
    found.sort(key=lambda pair: pair[0])
    return found


# ---- screening ---------------------------------------------------------------------------------


def _screened(record: PatientRecord, period: Period) -> Verdict:
    if not _under_five(record, period.last_day):
        return []
    weighed = any(
        has_coding(o.get("code"), codes.LOINC, (codes.LOINC_BODY_WEIGHT,))
        for _, o in _in_period(record.observations, period)
    )
    return [(weighed, record.id, None)]


# ---- anaemia -----------------------------------------------------------------------------------


def _anaemia(wanted: frozenset[str]) -> Judge:
    def judge(record: PatientRecord, period: Period) -> Verdict:
        born = record.birth_date()
        if born is None:
            return []
        measured = [
            (d, o)
            for d, o in hemoglobins(record, period.last_day)
            if d >= period.start
            and SIX_MONTHS_DAYS <= (d - born).days < UNDER_FIVE_DAYS
            and anaemia_class(o) in ("none", "mild", "moderate", "severe")
        ]
        if not measured:
            return []
        return [(anaemia_class(measured[-1][1]) in wanted, record.id, None)]

    return judge


# ---- growth ------------------------------------------------------------------------------------


def _zscore(indicator: str, below: Decimal) -> Judge:
    def judge(record: PatientRecord, period: Period) -> Verdict:
        if not _under_five(record, period.last_day):
            return []
        scores = []
        for _, o in _in_period(record.observations, period):
            if not has_coding(o.get("code"), codes.GROWTH_INDICATOR_SYSTEM, (indicator,)):
                continue
            if any(
                coding_code(c, codes.GROWTH_CLASSIFICATION_SYSTEM) == "implausible"
                for c in o.get("interpretation") or ()
            ):
                continue
            value = (o.get("valueQuantity") or {}).get("value")
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                scores.append(Decimal(str(value)))
        if not scores:
            return []
        return [(scores[-1] < below, record.id, scores[-1])]

    return judge


# ---- vaccines ----------------------------------------------------------------------------------


def _dose(series_id: str, number: int) -> Judge:
    def judge(record: PatientRecord, period: Period) -> Verdict:
        born, day = record.birth_date(), period.last_day
        if born is None or not _under_five(record, day):
            return []
        series = next(s for s in load_schedule().series if s.id == series_id)
        if series.doses[number - 1].recommended_age.after(born) > day:
            return []
        # one forecast per child and day, whatever the number of doses (groups) asking
        key = ("forecast", day)
        if key not in record.memo:
            record.memo[key] = forecast_immunizations(
                birth_date=born, assessment_date=day, doses=doses_given(record.immunizations, day)
            )
        return [(record.memo[key].for_series(series_id).valid_doses >= number, record.id, None)]

    return judge


def _vaccine_groups() -> tuple[Group, ...]:
    out = []
    for series in load_schedule().series:
        if series.population != "child":
            continue
        for dose in series.doses:
            out.append(
                Group(
                    f"{series.id}-{dose.number}",
                    f"{series.display}: {dose.label or f'dosis {dose.number}'} ({dose.recommended_age})",
                    f"menores de 5 años que cumplieron {dose.recommended_age}",
                    "con la dosis aplicada",
                    _dose(series.id, dose.number),
                )
            )
    return tuple(out)


# ---- referrals ---------------------------------------------------------------------------------


def _completion_day(request: Resource, task: Resource | None) -> dt.date | None:
    if task is not None and task.get("status") == COMPLETED:
        return parse_day((task.get("executionPeriod") or {}).get("end")) or parse_day(task.get("lastModified"))
    if request.get("status") == COMPLETED:
        return parse_day((request.get("meta") or {}).get("lastUpdated"))
    return None


def _referrals(record: PatientRecord, period: Period) -> Iterator[tuple[Resource, dt.date, dt.date | None]]:
    for request, task in record.referrals:
        if request.get("intent") not in ("order", "plan") or request.get("status") in ("draft", "entered-in-error"):
            continue
        authored = parse_day(request.get("authoredOn"))
        if authored is None or not period.contains(authored):
            continue
        done = _completion_day(request, task)
        yield request, authored, done if done is not None and done <= period.last_day else None


def _referral_completed(record: PatientRecord, period: Period) -> Verdict:
    return [(done is not None, f"ServiceRequest/{r['id']}", None) for r, _, done in _referrals(record, period)]


def _referral_days(record: PatientRecord, period: Period) -> Verdict:
    return [
        (True, f"ServiceRequest/{r['id']}", Decimal((done - authored).days))
        for r, authored, done in _referrals(record, period)
        if done is not None
    ]


_U5 = "menores de 5 años"
MEASURES: dict[str, Definition] = {
    d.id: d
    for d in (
        Definition(
            "puente-screening-coverage",
            "Cobertura del tamizaje de crecimiento y hemoglobina",
            "Children under five weighed in the period, of all children under five on its last day.",
            (
                Group(
                    "coverage",
                    "Cobertura del tamizaje",
                    f"{_U5} al final del periodo",
                    "tamizados en el periodo",
                    _screened,
                ),
            ),
        ),
        Definition(
            "puente-anaemia-prevalence",
            "Prevalencia de anemia (6 a 59 meses) por severidad",
            "Latest classified hemoglobin in the period of children 6-59 months (WHO 2024, NTS 213-2024).",
            tuple(
                Group(
                    code,
                    title,
                    "niños de 6 a 59 meses con hemoglobina clasificada en el periodo",
                    title,
                    _anaemia(frozenset(classes)),
                )
                for code, title, classes in (
                    ("anaemia", "Anemia (total)", ("mild", "moderate", "severe")),
                    ("mild", "Anemia leve", ("mild",)),
                    ("moderate", "Anemia moderada", ("moderate",)),
                    ("severe", "Anemia severa", ("severe",)),
                )
            ),
        ),
        *(
            Definition(
                f"puente-{name}-prevalence",
                f"Prevalencia de {spanish}",
                f"Latest plausible {indicator} z-score in the period of children under five (WHO 2006).",
                (
                    Group(
                        "moderate-or-severe",
                        f"{spanish.capitalize()} (z < -2)",
                        f"{_U5} con {indicator} en el periodo",
                        "z < -2",
                        _zscore(indicator, Decimal(-2)),
                    ),
                    Group(
                        "severe",
                        f"{spanish.capitalize()} severa (z < -3)",
                        f"{_U5} con {indicator} en el periodo",
                        "z < -3",
                        _zscore(indicator, Decimal(-3)),
                    ),
                ),
            )
            for name, spanish, indicator in (
                ("stunting", "desnutrición crónica", "lhfa"),
                ("wasting", "desnutrición aguda", "wflh"),
                ("underweight", "bajo peso", "wfa"),
            )
        ),
        Definition(
            "puente-vaccine-coverage",
            "Cobertura de vacunación por vacuna, dosis y edad",
            "Per dose of Peru's schedule (NTS 196-2022): children under five who reached the dose's "
            "recommended age, and those of them with the dose given.",
            _vaccine_groups(),
        ),
        Definition(
            "puente-referral-completion",
            "Referencias completadas y tiempo hasta completarlas",
            "Referrals authored in the period, completed by its end; and the median days to completion.",
            (
                Group(
                    "completion",
                    "Referencias completadas",
                    "referencias emitidas en el periodo",
                    "completadas al final del periodo",
                    _referral_completed,
                ),
                Group(
                    "time-to-completion",
                    "Días hasta completar (mediana)",
                    "referencias completadas",
                    "referencias completadas",
                    _referral_days,
                    score_unit="d",
                ),
            ),
        ),
    )
}


def unknown_measure(measure_id: str) -> NotFound:
    return NotFound(f"Measure/{measure_id} is not one of Puente's indicators ({', '.join(sorted(MEASURES))})")


def _population(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": POPULATION_SYSTEM, "code": code}], "text": text}


def measure_resource(definition: Definition) -> dict[str, Any]:
    return {
        "resourceType": "Measure",
        "id": definition.id,
        "url": f"{MEASURE_BASE}/{definition.id}",
        "name": definition.id.replace("-", "_"),
        "title": definition.title,
        "status": "active",
        "publisher": "Puente",
        "description": definition.description,
        "subjectCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"}]},
        "scoring": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": "proportion"}]
        },
        "group": [
            {
                "code": {"coding": [{"system": GROUP_SYSTEM, "code": g.code}], "text": g.title},
                "description": g.title,
                "population": [
                    {
                        "code": _population("denominator", g.denominator),
                        "description": g.denominator,
                        "criteria": {"language": "text/plain", "expression": g.denominator},
                    },
                    {
                        "code": _population("numerator", g.numerator),
                        "description": g.numerator,
                        "criteria": {"language": "text/plain", "expression": g.numerator},
                    },
                ],
            }
            for g in definition.groups
        ],
    }


def _score(group: Group, hits: list[tuple[str, Decimal | None]], total: int) -> dict[str, Any] | None:
    if group.score_unit == "d":
        values = [v for _, v in hits if v is not None]
        if not values:
            return None
        return {"value": float(statistics.median(values)), "unit": "d", "system": codes.UCUM, "code": "d"}
    if total == 0:
        return None
    return {"value": round(len(hits) / total, 4)}


def evaluate(
    definition: Definition, records: Records, period: Period, subject: str, *, subject_list: bool, generated: str
) -> dict[str, Any]:
    """The MeasureReport (`summary`, or `subject-list` with each population's members in a contained List)."""
    contained: list[dict[str, Any]] = []
    groups = []
    for group in definition.groups:
        denominator: list[str] = []
        numerator: list[tuple[str, Decimal | None]] = []
        for record in records:
            for in_numerator, who, value in group.judge(record, period):
                denominator.append(who)
                if in_numerator:
                    numerator.append((who, value))
        populations = []
        for code, members in (("denominator", denominator), ("numerator", [w for w, _ in numerator])):
            population: dict[str, Any] = {
                "code": _population(code, group.denominator if code == "denominator" else group.numerator),
                "count": len(members),
            }
            if subject_list:
                list_id = f"{group.code}-{code}"
                contained.append(
                    {
                        "resourceType": "List",
                        "id": list_id,
                        "status": "current",
                        "mode": "snapshot",
                        "entry": [{"item": {"reference": m if "/" in m else f"Patient/{m}"}} for m in members],
                    }
                )
                population["subjectResults"] = {"reference": f"#{list_id}"}
            populations.append(population)
        entry: dict[str, Any] = {
            "code": {"coding": [{"system": GROUP_SYSTEM, "code": group.code}], "text": group.title},
            "population": populations,
        }
        score = _score(group, numerator, len(denominator))
        if score is not None:
            entry["measureScore"] = score
        groups.append(entry)
    report: dict[str, Any] = {"resourceType": "MeasureReport"}
    if contained:
        report["contained"] = contained
    report.update(
        {
            "extension": [{"url": SUBJECT_EXTENSION, "valueReference": {"reference": subject}}],
            "status": "complete",
            "type": "subject-list" if subject_list else "summary",
            "measure": f"{MEASURE_BASE}/{definition.id}",
            "date": generated,
            "period": period.fhir(),
            "group": groups,
        }
    )
    if subject.split("/")[0] in ("Location", "Practitioner"):
        report["subject"] = {"reference": subject}
    elif subject.startswith("Organization/"):
        report["reporter"] = {"reference": subject}
    return report
