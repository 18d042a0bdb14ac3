"""Peru's immunization schedule as generator data, read from the rule set the forecast uses
(clinical/data/immunization/PE-NTS-196-2022.json): what each dose is (its vaccine, Spanish display,
CVX code) and when it is due come from there, so a generated dose is always one the forecast knows.

Only `coverage` is the generator's own: the chance a child receives the dose at all, before the
child's own engagement shifts it; it falls with age as in ENDES-like programme data (later doses
are missed more often).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from clinical.immunization import DEFAULT_SCHEDULE, Series, load_schedule

SCHEDULE_NAME = DEFAULT_SCHEDULE
_SCHEDULE = load_schedule(SCHEDULE_NAME)
_BIRTH = dt.date(2020, 1, 1)  # ages in days are counted from a fixed birthday (months vary in length)


@dataclass(frozen=True, slots=True)
class Dose:
    code: str
    display: str
    dose_number: int
    age_days: int
    coverage: float
    cvx: str | None


def _series(series_id: str) -> Series:
    return next(s for s in _SCHEDULE.series if s.id == series_id)


def _dose(series_id: str, number: int, coverage: float, code: str | None = None) -> Dose:
    """Dose `number` of a series, given as its preferred vaccine (or `code`, another that counts)."""
    target = _series(series_id).doses[number - 1]
    vaccine = _SCHEDULE.vaccines[code or target.vaccines[0]]
    assert vaccine.code in target.vaccines, (series_id, number, vaccine.code)
    age_days = (target.recommended_age.after(_BIRTH) - _BIRTH).days
    return Dose(vaccine.code, vaccine.display, number, age_days, coverage, vaccine.cvx)


CHILD_SCHEDULE: tuple[Dose, ...] = tuple(sorted((
    _dose("bcg", 1, 0.96),
    _dose("hepb-birth", 1, 0.92),
    _dose("dtp", 1, 0.93),
    _dose("polio", 1, 0.92),
    _dose("rotavirus", 1, 0.90),
    _dose("pneumococcal", 1, 0.91),
    _dose("dtp", 2, 0.89),
    _dose("polio", 2, 0.88),
    _dose("rotavirus", 2, 0.86),
    _dose("pneumococcal", 2, 0.87),
    _dose("dtp", 3, 0.84),
    _dose("polio", 3, 0.82),
    _dose("influenza-infant", 1, 0.70),
    _dose("influenza-infant", 2, 0.55),
    _dose("mmr", 1, 0.85),
    _dose("varicella", 1, 0.80),
    _dose("pneumococcal", 3, 0.81),
    _dose("yellow-fever", 1, 0.76),
    _dose("hepa", 1, 0.74),
    _dose("mmr", 2, 0.72),
    _dose("dtp", 4, 0.70, code="DPT"),
    _dose("polio", 4, 0.69),
    _dose("dtp", 5, 0.62),
    _dose("polio", 5, 0.61),
), key=lambda dose: dose.age_days))


def _pregnancy_dose(series_id: str, coverage: float, last_week: int) -> tuple[Dose, int, int]:
    """(dose, first gestational day it may be given, last gestational day)."""
    target = _series(series_id).doses[0]
    vaccine = _SCHEDULE.vaccines[target.vaccines[0]]
    first = (target.recommended_age.after(_BIRTH) - _BIRTH).days
    return Dose(vaccine.code, vaccine.display, 1, 0, coverage, vaccine.cvx), first, last_week * 7


# Pregnant women; the rule set gives the first week, the programme's practice the last.
DTPA_PREGNANCY = _pregnancy_dose("dtpa-pregnancy", 0.74, last_week=36)
INFLUENZA_PREGNANCY = _pregnancy_dose("influenza-pregnancy", 0.52, last_week=38)
