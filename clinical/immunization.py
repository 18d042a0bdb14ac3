"""Immunization schedule (versioned JSON data) and a pure forecast engine.

The engine is a small subset of the CDC CDSi logic: administered doses are evaluated in date
order against the target doses of each series (minimum age, minimum interval from the previous
valid dose, maximum age, catch-up skip ages), then the next target dose is forecast with its
earliest, due, overdue and latest dates. A late dose is only a warning, and an overdue dose is a
catch-up recommendation: nothing is refused because it is late.

"Age" is measured from a reference date: the birth date for children, the start of pregnancy
(last menstrual period, EDD - 280 days) for pregnancy series, so pregnancy ages are gestational.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any

from clinical import codes
from clinical.dates import Period

DEFAULT_SCHEDULE = "PE-NTS-196-2022"
PREGNANCY_DAYS = 280  # EDD is 40 weeks after the last menstrual period (Naegele)
_ONE_DAY = dt.timedelta(days=1)


class ForecastStatus(StrEnum):
    NOT_YET_DUE = "not-yet-due"
    DUE = "due"
    OVERDUE = "overdue"
    COMPLETE = "complete"
    AGED_OUT = "aged-out"

    @property
    def codings(self) -> tuple[codes.Coding, ...]:
        """forecastStatus codings: FHIR R4 core status where one exists, plus the ImmDS IG status."""
        return _STATUS_CODINGS[self]


def _core(code: str, display: str) -> codes.Coding:
    return codes.Coding(codes.IMMUNIZATION_RECOMMENDATION_STATUS, code, display)


def _immds(code: str, display: str) -> codes.Coding:
    return codes.Coding(codes.IMMDS_FORECAST_STATUS, code, display)


_STATUS_CODINGS = {
    ForecastStatus.NOT_YET_DUE: (_immds("notComplete", "Not Complete"),),
    ForecastStatus.DUE: (_core("due", "Due"), _immds("notComplete", "Not Complete")),
    ForecastStatus.OVERDUE: (_core("overdue", "Overdue"), _immds("notComplete", "Not Complete")),
    ForecastStatus.COMPLETE: (_core("complete", "Complete"), _immds("complete", "Complete")),
    ForecastStatus.AGED_OUT: (_immds("agedOut", "Aged Out"),),
}


class DoseStatus(StrEnum):
    VALID = "valid"
    NOT_VALID = "not-valid"  # given, but does not count (too early, wrong vaccine, past strict max)
    EXTRA = "extra"  # series already complete
    NOT_COUNTED = "not-counted"  # outside the series' scope, e.g. before this pregnancy


# ----------------------------------------------------------------------------- schedule model


@dataclass(frozen=True, slots=True)
class Vaccine:
    code: str
    display: str
    cvx: str | None
    cvx_provisional: bool

    @property
    def codings(self) -> tuple[codes.Coding, ...]:
        """Local Peru code first, then CVX where mapped."""
        local = codes.Coding(codes.PE_VACCINE_SYSTEM, self.code, self.display)
        return (local,) if self.cvx is None else (local, codes.Coding(codes.CVX, self.cvx))


@dataclass(frozen=True, slots=True)
class TargetDose:
    number: int
    label: str
    vaccines: tuple[str, ...]  # local codes that count for this dose; the first is preferred
    minimum_age: Period
    recommended_age: Period
    overdue_after: Period
    minimum_interval: Period | None = None
    recommended_interval: Period | None = None
    maximum_age: Period | None = None
    strict_maximum_age: bool = False
    skip_from_age: Period | None = None


@dataclass(frozen=True, slots=True)
class Series:
    id: str
    display: str
    population: str  # "child" | "pregnancy"
    scope: str  # "lifetime" | "pregnancy": which earlier doses count
    doses: tuple[TargetDose, ...]

    @property
    def vaccines(self) -> frozenset[str]:
        return frozenset(code for dose in self.doses for code in dose.vaccines)


@dataclass(frozen=True)
class Schedule:
    name: str
    version: str
    title: str
    grace_days: int
    vaccines: Mapping[str, Vaccine]
    series: tuple[Series, ...]
    notes: tuple[str, ...] = ()
    by_cvx: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        vaccines = {
            v["code"]: Vaccine(v["code"], v["display"], v.get("cvx"), bool(v.get("cvxProvisional", True)))
            for v in data["vaccines"]
        }
        default_overdue = Period.from_json(data["defaultOverdueAfter"])
        series_list = []
        for s in data["series"]:
            if s["population"] not in ("child", "pregnancy") or s["scope"] not in ("lifetime", "pregnancy"):
                raise ValueError(f"series {s['id']}: bad population or scope")
            doses = []
            for number, d in enumerate(s["doses"], start=1):
                unknown = [code for code in d["vaccines"] if code not in vaccines]
                if unknown:
                    raise ValueError(f"series {s['id']} dose {number}: unknown vaccines {unknown}")

                def period(key: str, d: dict[str, Any] = d) -> Period | None:
                    return Period.from_json(d[key]) if key in d else None

                doses.append(TargetDose(
                    number=number, label=d.get("label", f"{s['display']} {number}"),
                    vaccines=tuple(d["vaccines"]),
                    minimum_age=Period.from_json(d["minimumAge"]),
                    recommended_age=Period.from_json(d["recommendedAge"]),
                    overdue_after=period("overdueAfter") or default_overdue,
                    minimum_interval=period("minimumInterval"),
                    recommended_interval=period("recommendedInterval"),
                    maximum_age=period("maximumAge"),
                    strict_maximum_age=bool(d.get("strictMaximumAge", False)),
                    skip_from_age=period("skipFromAge"),
                ))
            series_list.append(Series(s["id"], s["display"], s["population"], s["scope"], tuple(doses)))
        ids = [s.id for s in series_list]
        if len(ids) != len(set(ids)):
            raise ValueError("series ids must be unique")
        by_cvx: dict[str, set[str]] = {}
        for v in vaccines.values():
            if v.cvx is not None:
                by_cvx.setdefault(_normal_cvx(v.cvx), set()).add(v.code)
        return cls(
            name=data["name"], version=str(data["version"]), title=data["title"],
            grace_days=int(data.get("gracePeriodDays", 0)), vaccines=MappingProxyType(vaccines),
            series=tuple(series_list), notes=tuple(data.get("notes", ())),
            by_cvx=MappingProxyType({k: frozenset(v) for k, v in by_cvx.items()}),
        )

    def local_codes(self, dose: AdministeredDose) -> frozenset[str]:
        """Local vaccine codes an administered dose stands for (empty if not recognised)."""
        if dose.system in (None, codes.PE_VACCINE_SYSTEM):
            return frozenset((dose.vaccine_code,)) if dose.vaccine_code in self.vaccines else frozenset()
        if dose.system == codes.CVX:
            return self.by_cvx.get(_normal_cvx(dose.vaccine_code), frozenset())
        return frozenset()


def _normal_cvx(code: str) -> str:
    code = code.strip()
    return code.lstrip("0") or "0" if code.isdigit() else code


def available_schedules() -> list[str]:
    folder = resources.files("clinical") / "data" / "immunization"
    return sorted(e.name[:-5] for e in folder.iterdir() if e.name.endswith(".json"))


@functools.cache
def load_schedule(name: str = DEFAULT_SCHEDULE) -> Schedule:
    entry = resources.files("clinical") / "data" / "immunization" / f"{name}.json"
    if not entry.is_file():
        raise KeyError(f"no immunization schedule {name!r}; available: {available_schedules()}")
    data = json.loads(entry.read_text(encoding="utf-8"))
    if data.get("name") != name:
        raise ValueError(f"schedule file {name}.json declares name {data.get('name')!r}")
    return Schedule.from_json(data)


# ----------------------------------------------------------------------------- inputs and results


@dataclass(frozen=True, slots=True)
class AdministeredDose:
    """A dose given. `system` None or PE_VACCINE_SYSTEM: local code; CVX: mapped to local codes.

    `id` is echoed back (e.g. the Immunization resource id). Callers pass only doses that were
    actually given (status completed), not entered-in-error or not-done records.
    """

    vaccine_code: str
    date: dt.date
    system: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ForecastWarning:
    code: str  # early-dose, short-interval, late-dose, after-maximum-age, catch-up, wrong-vaccine, ...
    message: str
    series_id: str | None = None
    dose_number: int | None = None
    dose_id: str | None = None


@dataclass(frozen=True, slots=True)
class DoseEvaluation:
    dose: AdministeredDose
    series_id: str
    dose_number: int | None  # target dose it was evaluated against
    status: DoseStatus
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    """The forecast of one series: its next dose, or that it is complete / aged out."""

    series_id: str
    series_display: str
    status: ForecastStatus
    series_doses: int
    valid_doses: int
    dose_number: int | None  # next dose (1-based); None when complete
    dose_label: str | None
    vaccines: tuple[Vaccine, ...]  # acceptable vaccines for the next dose, preferred first
    earliest: dt.date | None
    due: dt.date | None
    overdue: dt.date | None
    latest: dt.date | None  # last day it may be given (maximum age - 1 day)
    can_give_now: bool
    supporting_doses: tuple[AdministeredDose, ...]  # the valid doses counted
    warnings: tuple[ForecastWarning, ...] = ()

    @property
    def forecast_status(self) -> tuple[codes.Coding, ...]:
        return self.status.codings

    @property
    def date_criteria(self) -> tuple[tuple[codes.Coding, dt.date], ...]:
        """(LOINC code, date) pairs for ImmunizationRecommendation.recommendation.dateCriterion."""
        pairs = (
            (codes.DATE_CRITERION_EARLIEST, self.earliest), (codes.DATE_CRITERION_DUE, self.due),
            (codes.DATE_CRITERION_OVERDUE, self.overdue), (codes.DATE_CRITERION_LATEST, self.latest),
        )
        return tuple((code, when) for code, when in pairs if when is not None)


@dataclass(frozen=True)
class Forecast:
    schedule: str
    schedule_version: str
    assessment_date: dt.date
    reference_date: dt.date  # birth date, or start of pregnancy
    recommendations: tuple[Recommendation, ...]
    evaluations: tuple[DoseEvaluation, ...]
    warnings: tuple[ForecastWarning, ...]  # every warning, including the recommendations'

    def for_series(self, series_id: str) -> Recommendation:
        return next(r for r in self.recommendations if r.series_id == series_id)


# ----------------------------------------------------------------------------- engine


def forecast_immunizations(
    *,
    birth_date: dt.date,
    assessment_date: dt.date,
    doses: Iterable[AdministeredDose],
    schedule: str | Schedule = DEFAULT_SCHEDULE,
) -> Forecast:
    """Forecast the child series of the schedule for a child born on `birth_date`."""
    if assessment_date < birth_date:
        raise ValueError("assessment date is before the birth date")
    return _forecast(_schedule(schedule), "child", birth_date, assessment_date, doses)


def forecast_pregnancy_immunizations(
    *,
    assessment_date: dt.date,
    doses: Iterable[AdministeredDose],
    pregnancy_start: dt.date | None = None,
    estimated_delivery_date: dt.date | None = None,
    schedule: str | Schedule = DEFAULT_SCHEDULE,
) -> Forecast:
    """Forecast the pregnancy series; give the pregnancy start (LMP) or the estimated delivery date."""
    if (pregnancy_start is None) == (estimated_delivery_date is None):
        raise ValueError("give exactly one of pregnancy_start and estimated_delivery_date")
    start = pregnancy_start or pregnancy_start_from_edd(estimated_delivery_date)  # type: ignore[arg-type]
    return _forecast(_schedule(schedule), "pregnancy", start, assessment_date, doses)


def pregnancy_start_from_edd(edd: dt.date) -> dt.date:
    return edd - dt.timedelta(days=PREGNANCY_DAYS)


def gestational_age_days(on: dt.date, *, pregnancy_start: dt.date | None = None,
                         estimated_delivery_date: dt.date | None = None) -> int:
    start = pregnancy_start or pregnancy_start_from_edd(estimated_delivery_date)  # type: ignore[arg-type]
    return (on - start).days


def _schedule(schedule: str | Schedule) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else load_schedule(schedule)


@dataclass(frozen=True, slots=True)
class _Dates:
    minimum: dt.date  # by age alone
    earliest: dt.date
    due: dt.date
    overdue: dt.date
    latest: dt.date | None


def _dates(dose: TargetDose, ref: dt.date, last_valid: dt.date | None) -> _Dates:
    minimum = dose.minimum_age.after(ref)
    earliest = minimum
    due = dose.recommended_age.after(ref)
    if last_valid is not None:
        if dose.minimum_interval is not None:
            earliest = max(earliest, dose.minimum_interval.after(last_valid))
        interval = dose.recommended_interval or dose.minimum_interval
        if interval is not None:
            due = max(due, interval.after(last_valid))
    due = max(due, earliest)
    latest = None if dose.maximum_age is None else dose.maximum_age.after(ref) - _ONE_DAY
    return _Dates(minimum, earliest, due, dose.overdue_after.after(due), latest)


def _forecast(schedule: Schedule, population: str, ref: dt.date, assessment: dt.date,
              doses: Iterable[AdministeredDose]) -> Forecast:
    series_list = [s for s in schedule.series if s.population == population]
    accepted = frozenset().union(*(s.vaccines for s in series_list))
    warnings: list[ForecastWarning] = []
    mapped: list[tuple[AdministeredDose, frozenset[str]]] = []
    for dose in sorted(doses, key=lambda d: d.date):
        local = schedule.local_codes(dose)
        if not local:
            warnings.append(ForecastWarning(
                "unknown-vaccine", f"vaccine code {dose.vaccine_code!r} ({dose.system or 'local'}) is not in "
                f"schedule {schedule.name}; dose ignored", dose_id=dose.id))
        elif dose.date > assessment:
            warnings.append(ForecastWarning(
                "future-dose", f"dose dated {dose.date.isoformat()} is after the assessment date; ignored",
                dose_id=dose.id))
        elif not local & accepted:
            warnings.append(ForecastWarning(
                "not-in-series",
                f"vaccine {dose.vaccine_code!r} is not part of the {population} series; ignored",
                dose_id=dose.id))
        else:
            mapped.append((dose, local))

    recommendations, evaluations = [], []
    for series in series_list:
        recommendation, evals = _forecast_series(schedule, series, ref, assessment, mapped)
        recommendations.append(recommendation)
        evaluations.extend(evals)
        warnings.extend(recommendation.warnings)
    return Forecast(schedule.name, schedule.version, assessment, ref, tuple(recommendations),
                    tuple(evaluations), tuple(warnings))


def _forecast_series(
    schedule: Schedule, series: Series, ref: dt.date, assessment: dt.date,
    doses: list[tuple[AdministeredDose, frozenset[str]]],
) -> tuple[Recommendation, list[DoseEvaluation]]:
    grace = dt.timedelta(days=schedule.grace_days)
    count = len(series.doses)
    target = 0
    last_valid: dt.date | None = None
    evaluations: list[DoseEvaluation] = []
    warnings: list[ForecastWarning] = []
    supporting: list[AdministeredDose] = []

    def warn(code: str, message: str, number: int | None, dose: AdministeredDose | None = None) -> None:
        warnings.append(ForecastWarning(code, message, series.id, number, dose.id if dose else None))

    for dose, local in doses:
        if not local & series.vaccines:
            continue
        if series.scope == "pregnancy" and dose.date < ref:
            evaluations.append(
                DoseEvaluation(dose, series.id, None, DoseStatus.NOT_COUNTED, ("before-pregnancy",)))
            continue
        while (target < count and series.doses[target].skip_from_age is not None
               and dose.date >= series.doses[target].skip_from_age.after(ref)):  # type: ignore[union-attr]
            target += 1
        if target >= count:
            evaluations.append(DoseEvaluation(dose, series.id, None, DoseStatus.EXTRA, ("series-complete",)))
            continue
        spec = series.doses[target]
        when = dose.date.isoformat()
        if not local & set(spec.vaccines):
            evaluations.append(
                DoseEvaluation(dose, series.id, spec.number, DoseStatus.NOT_VALID, ("wrong-vaccine",)))
            warn("wrong-vaccine", f"{dose.vaccine_code} on {when} does not count for {spec.label}",
                 spec.number, dose)
            continue
        dates = _dates(spec, ref, last_valid)
        reasons = []
        # A lifetime series forecast from a pregnancy keeps doses from before the pregnancy.
        counts_before_ref = (series.scope == "lifetime" and series.population == "pregnancy"
                             and dose.date < ref)
        if dose.date < dates.minimum - grace and not counts_before_ref:
            reasons.append("before-minimum-age")
            warn("early-dose", f"{spec.label} on {when} was given before the minimum age "
                 f"({spec.minimum_age}); it does not count", spec.number, dose)
        if (last_valid is not None and spec.minimum_interval is not None
                and dose.date < spec.minimum_interval.after(last_valid) - grace):
            reasons.append("before-minimum-interval")
            warn("short-interval", f"{spec.label} on {when} came less than {spec.minimum_interval} after the "
                 "previous dose; it does not count", spec.number, dose)
        past_max = dates.latest is not None and dose.date > dates.latest
        if past_max and spec.strict_maximum_age:
            reasons.append("after-maximum-age")
            warn("after-maximum-age", f"{spec.label} on {when} was given after the maximum age "
                 f"({spec.maximum_age}); it does not count", spec.number, dose)
        if reasons:
            evaluations.append(
                DoseEvaluation(dose, series.id, spec.number, DoseStatus.NOT_VALID, tuple(reasons)))
            continue
        notes: tuple[str, ...] = ()
        if past_max:
            notes = ("after-maximum-age",)
            warn("after-maximum-age", f"{spec.label} on {when} was given after the maximum age "
                 f"({spec.maximum_age}); counted", spec.number, dose)
        elif dose.date >= dates.overdue:
            notes = ("late",)
            warn("late-dose", f"{spec.label} on {when} was late (overdue from {dates.overdue.isoformat()}); "
                 "counted", spec.number, dose)
        evaluations.append(DoseEvaluation(dose, series.id, spec.number, DoseStatus.VALID, notes))
        supporting.append(dose)
        target += 1
        last_valid = dose.date

    # Skip doses a catch-up no longer needs, judged on the day the dose could first be given.
    while target < count:
        spec = series.doses[target]
        dates = _dates(spec, ref, last_valid)
        skip_from = spec.skip_from_age
        if skip_from is None or max(assessment, dates.earliest) < skip_from.after(ref):
            break
        target += 1

    if target >= count:
        return Recommendation(
            series_id=series.id, series_display=series.display, status=ForecastStatus.COMPLETE,
            series_doses=count, valid_doses=len(supporting), dose_number=None, dose_label=None, vaccines=(),
            earliest=None, due=None, overdue=None, latest=None, can_give_now=False,
            supporting_doses=tuple(supporting), warnings=tuple(warnings),
        ), evaluations

    vaccines = tuple(schedule.vaccines[code] for code in spec.vaccines)
    if dates.latest is not None and (assessment > dates.latest or dates.earliest > dates.latest):
        status = ForecastStatus.AGED_OUT
        warn("aged-out", f"{spec.label} can no longer be given: maximum age {spec.maximum_age} "
             f"(last day {dates.latest.isoformat()})", spec.number)
    elif assessment >= dates.overdue:
        status = ForecastStatus.OVERDUE
        warn("catch-up", f"{spec.label} is overdue since {dates.overdue.isoformat()}: give it at the next "
             f"contact (possible from {dates.earliest.isoformat()}), then continue at minimum intervals",
             spec.number)
    elif assessment >= dates.due:
        status = ForecastStatus.DUE
    else:
        status = ForecastStatus.NOT_YET_DUE
    can_give = (status is not ForecastStatus.AGED_OUT and dates.earliest <= assessment)
    return Recommendation(
        series_id=series.id, series_display=series.display, status=status, series_doses=count,
        valid_doses=len(supporting), dose_number=spec.number, dose_label=spec.label, vaccines=vaccines,
        earliest=dates.earliest, due=dates.due, overdue=dates.overdue, latest=dates.latest,
        can_give_now=can_give, supporting_doses=tuple(supporting), warnings=tuple(warnings),
    ), evaluations
