"""Anaemia classification from a hemoglobin measurement, driven by a versioned rule set.

All comparisons are exact decimal arithmetic in g/L, so a band edge such as 10.5 g/dL at
6-23 months is never blurred by binary floating point.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clinical import codes, rulesets
from clinical.dates import completed_months
from clinical.units import Number, hemoglobin_to_g_per_l, to_decimal

DEFAULT_RULESET = "WHO-2024"
_TEN = Decimal(10)


class AnaemiaClass(StrEnum):
    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    NOT_CLASSIFIABLE = "not-classifiable"

    @property
    def interpretation(self) -> codes.Coding | None:
        """v3-ObservationInterpretation for the hemoglobin Observation (None: do not interpret)."""
        return _INTERPRETATION.get(self)


_INTERPRETATION = {
    AnaemiaClass.NONE: codes.INTERPRETATION_NORMAL,
    AnaemiaClass.MILD: codes.INTERPRETATION_LOW,
    AnaemiaClass.MODERATE: codes.INTERPRETATION_LOW,
    AnaemiaClass.SEVERE: codes.INTERPRETATION_CRITICAL_LOW,
}


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Thresholds in g/L; each class starts strictly below its threshold."""

    code: str
    label: str
    anaemia_below: Decimal
    moderate_below: Decimal
    severe_below: Decimal

    def classify(self, hb_g_per_l: Decimal) -> AnaemiaClass:
        if hb_g_per_l < self.severe_below:
            return AnaemiaClass.SEVERE
        if hb_g_per_l < self.moderate_below:
            return AnaemiaClass.MODERATE
        if hb_g_per_l < self.anaemia_below:
            return AnaemiaClass.MILD
        return AnaemiaClass.NONE

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cutoffs:
        cut = cls(
            code=data["code"], label=data["label"],
            anaemia_below=Decimal(str(data["anaemiaBelow"])),
            moderate_below=Decimal(str(data["moderateBelow"])),
            severe_below=Decimal(str(data["severeBelow"])),
        )
        if not cut.severe_below <= cut.moderate_below <= cut.anaemia_below:
            raise ValueError(f"anaemia cut-offs out of order in group {cut.code}")
        return cut


@dataclass(frozen=True, slots=True)
class AgeGroup:
    from_months: int
    to_months: int | None  # exclusive; None = no upper bound
    sex: str | None  # None = either sex
    cutoffs: Cutoffs

    def matches(self, months: int, sex: str | None) -> bool:
        if months < self.from_months or (self.to_months is not None and months >= self.to_months):
            return False
        return self.sex is None or self.sex == sex


@dataclass(frozen=True, slots=True)
class Band:
    start: Decimal  # inclusive
    end: Decimal | None  # exclusive
    subtract_g_per_l: Decimal

    def contains(self, value: Decimal) -> bool:
        return value >= self.start and (self.end is None or value < self.end)


@dataclass(frozen=True)
class AnaemiaRuleset:
    name: str
    title: str
    source: str
    minimum_age_months: int
    groups: tuple[AgeGroup, ...]
    trimesters: dict[int, Cutoffs]
    second_trimester_from_weeks: int
    third_trimester_from_weeks: int
    altitude_from_m: Decimal
    altitude_bands: tuple[Band, ...]
    smoking_from_age_years: int
    smoking_bands: tuple[Band, ...]
    smoking_provisional: bool
    notes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnaemiaRuleset:
        if data.get("unit") != "g/L":
            raise ValueError("anaemia rule sets are written in g/L")
        groups = tuple(
            AgeGroup(g["fromMonths"], g["toMonths"], g["sex"], Cutoffs.from_json(g)) for g in data["groups"]
        )
        preg = data["pregnancy"]
        trimesters = {t["trimester"]: Cutoffs.from_json(t) for t in preg["trimesters"]}
        if sorted(trimesters) != [1, 2, 3]:
            raise ValueError("pregnancy cut-offs must cover trimesters 1, 2 and 3")
        alt = data["altitude"]
        if alt.get("beyondLastBand") != "not-classifiable":
            raise ValueError("only beyondLastBand='not-classifiable' is implemented")
        altitude_bands = tuple(
            Band(Decimal(str(b["fromMetres"])), Decimal(str(b["toMetres"])), Decimal(str(b["subtract"])))
            for b in alt["bands"]
        )
        for before, after in itertools.pairwise(altitude_bands):
            if before.end != after.start:
                raise ValueError("altitude bands must be contiguous")
        if altitude_bands and altitude_bands[0].start != Decimal(str(alt["fromMetres"])):
            raise ValueError("first altitude band must start at fromMetres")
        smoke = data["smoking"]
        starts = [Decimal(str(b["fromPacksPerDay"])) for b in smoke["bands"]]
        smoking_bands = tuple(
            Band(start, starts[i + 1] if i + 1 < len(starts) else None, Decimal(str(b["subtract"])))
            for i, (start, b) in enumerate(zip(starts, smoke["bands"], strict=True))
        )
        return cls(
            name=data["name"], title=data["title"], source=data["source"],
            minimum_age_months=data["minimumAgeMonths"], groups=groups, trimesters=trimesters,
            second_trimester_from_weeks=preg["secondTrimesterFromWeeks"],
            third_trimester_from_weeks=preg["thirdTrimesterFromWeeks"],
            altitude_from_m=Decimal(str(alt["fromMetres"])), altitude_bands=altitude_bands,
            smoking_from_age_years=smoke["fromAgeYears"], smoking_bands=smoking_bands,
            smoking_provisional=bool(smoke["provisional"]), notes=tuple(data.get("notes", ())),
        )

    def trimester(self, gestational_weeks: Number) -> int:
        """Trimester (1-3) for a gestational age in completed or fractional weeks."""
        weeks = to_decimal(gestational_weeks)
        if weeks < 0:
            raise ValueError("gestational age cannot be negative")
        if weeks < self.second_trimester_from_weeks:
            return 1
        if weeks < self.third_trimester_from_weeks:
            return 2
        return 3


@functools.cache
def load_anaemia_ruleset(name: str = DEFAULT_RULESET) -> AnaemiaRuleset:
    return AnaemiaRuleset.from_json(rulesets.load_json("anaemia", name))


@dataclass(frozen=True)
class AnaemiaResult:
    """Everything the $nutrition-status anemia part and the interpretation need.

    Hemoglobin values are reported in g/dL (the unit of LOINC 718-7 in Puente); `*_g_dl` values
    are exact decimals. `adjusted_hemoglobin_g_dl` is None only when altitude is out of range.
    """

    ruleset: str
    classification: AnaemiaClass
    hemoglobin_g_dl: Decimal
    adjusted_hemoglobin_g_dl: Decimal | None
    altitude_m: Decimal
    altitude_adjustment_g_dl: Decimal
    smoking_adjustment_g_dl: Decimal
    age_months: int
    group: str | None = None
    anaemia_below_g_dl: Decimal | None = None
    provisional: bool = False  # a provisional ([R]) rule, e.g. smoking, changed the value
    reason: str | None = None  # machine code why not classifiable
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def interpretation(self) -> codes.Coding | None:
        return self.classification.interpretation

    @property
    def anaemic(self) -> bool:
        return self.classification in (AnaemiaClass.MILD, AnaemiaClass.MODERATE, AnaemiaClass.SEVERE)

    @property
    def severe(self) -> bool:
        return self.classification is AnaemiaClass.SEVERE


def trimester_from_gestational_weeks(weeks: Number, ruleset: str = DEFAULT_RULESET) -> int:
    return load_anaemia_ruleset(ruleset).trimester(weeks)


def classify_anaemia(
    hemoglobin: Number,
    unit: str,
    *,
    birth_date: dt.date,
    measurement_date: dt.date,
    sex: str | None,
    altitude_m: Number,
    pregnant: bool = False,
    trimester: int | None = None,
    smoker: bool = False,
    packs_per_day: Number | None = None,
    ruleset: str | AnaemiaRuleset = DEFAULT_RULESET,
) -> AnaemiaResult:
    """Classify one hemoglobin measurement.

    sex: FHIR administrative gender ("male", "female", other values: unknown).
    altitude_m: residence altitude in metres (the caller supplies the deployment default when the
    patient's Location has none); reported back in the result.
    pregnant/trimester: trimester 1-3; unknown trimester classifies only when trimester 1/3 and
    trimester 2 cut-offs agree. smoker/packs_per_day: adults only (see the rule set).
    Raises UnitError for an unknown unit and ValueError for impossible input.
    """
    rules = ruleset if isinstance(ruleset, AnaemiaRuleset) else load_anaemia_ruleset(ruleset)
    measured = hemoglobin_to_g_per_l(hemoglobin, unit)
    if measured <= 0:
        raise ValueError("hemoglobin must be positive")
    if pregnant and sex == "male":
        raise ValueError("pregnant=True with sex='male'")
    if trimester is not None and trimester not in (1, 2, 3):
        raise ValueError("trimester must be 1, 2 or 3")
    months = completed_months(birth_date, measurement_date)
    altitude = to_decimal(altitude_m)
    notes: list[str] = []

    def result(classification: AnaemiaClass, **kw: Any) -> AnaemiaResult:
        return AnaemiaResult(
            ruleset=rules.name, classification=classification, hemoglobin_g_dl=measured / _TEN,
            altitude_m=altitude, age_months=months, notes=tuple(notes), **kw,
        )

    # Altitude: subtract from the measured value, only from the first band up.
    altitude_subtract = Decimal(0)
    if altitude >= rules.altitude_from_m:
        band = next((b for b in rules.altitude_bands if b.contains(altitude)), None)
        if band is None:
            notes.append(f"altitude {altitude} m is beyond the rule set's altitude bands")
            return result(
                AnaemiaClass.NOT_CLASSIFIABLE, adjusted_hemoglobin_g_dl=None,
                altitude_adjustment_g_dl=Decimal(0), smoking_adjustment_g_dl=Decimal(0),
                reason="altitude-out-of-range",
            )
        altitude_subtract = band.subtract_g_per_l

    smoking_subtract = Decimal(0)
    provisional = False
    if smoker:
        if months >= rules.smoking_from_age_years * 12:
            packs = Decimal(0) if packs_per_day is None else to_decimal(packs_per_day)
            if packs < 0:
                raise ValueError("packs_per_day cannot be negative")
            band = next(b for b in rules.smoking_bands if b.contains(packs))
            smoking_subtract = band.subtract_g_per_l
            provisional = rules.smoking_provisional
            if provisional:
                notes.append("smoking adjustment is provisional")
        else:
            notes.append(f"smoking adjustment applies from {rules.smoking_from_age_years} years; not applied")

    adjusted = measured - altitude_subtract - smoking_subtract
    common = dict(
        adjusted_hemoglobin_g_dl=adjusted / _TEN,
        altitude_adjustment_g_dl=altitude_subtract / _TEN,
        smoking_adjustment_g_dl=smoking_subtract / _TEN,
        provisional=provisional,
    )

    if months < rules.minimum_age_months:
        notes.append(f"no {rules.name} cut-off under {rules.minimum_age_months} months")
        return result(AnaemiaClass.NOT_CLASSIFIABLE, reason="age-below-minimum", **common)

    if pregnant:
        if trimester is not None:
            cut = rules.trimesters[trimester]
            return result(cut.classify(adjusted), group=cut.code, anaemia_below_g_dl=cut.anaemia_below / _TEN,
                          **common)
        outcomes = {c.classify(adjusted) for c in rules.trimesters.values()}
        if len(outcomes) == 1:
            notes.append("trimester unknown; every trimester's cut-offs give the same class")
            return result(outcomes.pop(), group="pregnant-trimester-unknown", **common)
        notes.append("trimester unknown and the trimester cut-offs disagree")
        return result(AnaemiaClass.NOT_CLASSIFIABLE, group="pregnant-trimester-unknown",
                      reason="trimester-unknown", **common)

    known_sex = sex if sex in ("male", "female") else None
    group = next((g for g in rules.groups if g.matches(months, known_sex)), None)
    if group is None:
        notes.append("cut-offs at this age depend on sex, which is unknown")
        return result(AnaemiaClass.NOT_CLASSIFIABLE, reason="sex-unknown", **common)
    cut = group.cutoffs
    return result(cut.classify(adjusted), group=cut.code, anaemia_below_g_dl=cut.anaemia_below / _TEN,
                  **common)
