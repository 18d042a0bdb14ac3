"""WHO Child Growth Standards z-scores (0-5 years), computed the way WHO's anthro package does.

Rules (domain.md §3, WHO anthro): age in whole days selects the table row; z-scores only for
age < 60 months (days / 30.4375); recumbent length under 731 days and standing height from 731
days (±0.7 cm when the other position was measured: a standing measurement under 731 days gets
+0.7 cm whatever the age, and one under 9 months is also flagged implausible, as anthro does, on every
indicator that uses the length); weight-for-length under
731 days and weight-for-height from 731 days with L, M and S interpolated between 0.1 cm rows;
BMI from the adjusted length/height; restricted tails beyond ±3 SD for wfa, wflh, bfa and acfa;
z rounded to 2 decimals, then flags and cut-offs applied to the rounded value. With oedema the
weight-based z-scores are not computed (and the child counts as SAM).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from clinical import rulesets
from clinical.dates import age_in_days
from clinical.growth_tables import LMS, SEX_CODES, LmsTable, load_table
from clinical.units import Number, to_decimal

DEFAULT_RULESET = "WHO-2006"
_TENTH = Decimal("0.1")
_HUNDREDTH = Decimal("0.01")


class Indicator(StrEnum):
    WFA = "wfa"  # weight-for-age
    LHFA = "lhfa"  # length/height-for-age
    WFLH = "wflh"  # weight-for-length/height
    BFA = "bfa"  # BMI-for-age
    HCFA = "hcfa"  # head circumference-for-age
    ACFA = "acfa"  # arm (MUAC) circumference-for-age


@dataclass(frozen=True, slots=True)
class IndicatorRules:
    restricted_tails: bool
    implausible_below: Decimal
    implausible_above: Decimal
    classes: tuple[tuple[str, Decimal, str | None], ...]  # ("below"|"above", threshold, code)
    otherwise: str | None

    def classify(self, z: Decimal) -> str | None:
        for direction, threshold, code in self.classes:
            if (direction == "below" and z < threshold) or (direction == "above" and z > threshold):
                return code
        return self.otherwise

    def implausible(self, z: Decimal) -> bool:
        return z < self.implausible_below or z > self.implausible_above


@dataclass(frozen=True)
class GrowthRuleset:
    name: str
    days_per_month: Decimal
    maximum_age_months: int
    switch_days: int
    position_adjustment_cm: Decimal
    standing_implausible_below_months: int
    wfl_range_cm: tuple[Decimal, Decimal]
    wfh_range_cm: tuple[Decimal, Decimal]
    indicators: Mapping[Indicator, IndicatorRules]
    muac_from_months: int
    muac_to_months: int
    muac_sam_below_mm: Decimal
    muac_mam_below_mm: Decimal
    sam_whz_below: Decimal
    sam_oedema: bool
    mam_whz_below: Decimal

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GrowthRuleset:
        def d(value: Any) -> Decimal:
            return Decimal(str(value))

        indicators: dict[Indicator, IndicatorRules] = {}
        for key, spec in data["indicators"].items():
            classes = []
            for entry in spec["classes"]:
                direction = "below" if "below" in entry else "above"
                classes.append((direction, d(entry[direction]), entry["code"]))
            indicators[Indicator(key)] = IndicatorRules(
                restricted_tails=bool(spec["restrictedTails"]),
                implausible_below=d(spec["implausibleBelow"]), implausible_above=d(spec["implausibleAbove"]),
                classes=tuple(classes), otherwise=spec["otherwise"],
            )
        if set(indicators) != set(Indicator):
            raise ValueError("growth rule set must define every indicator")
        muac = data["muac"]
        return cls(
            name=data["name"], days_per_month=d(data["daysPerMonth"]),
            maximum_age_months=data["maximumAgeMonths"], switch_days=data["lengthHeightSwitchDays"],
            position_adjustment_cm=d(data["positionAdjustmentCm"]),
            standing_implausible_below_months=data["standingImplausibleBelowMonths"],
            wfl_range_cm=(d(data["weightForLengthCm"][0]), d(data["weightForLengthCm"][1])),
            wfh_range_cm=(d(data["weightForHeightCm"][0]), d(data["weightForHeightCm"][1])),
            indicators=MappingProxyType(indicators),
            muac_from_months=muac["fromAgeMonths"], muac_to_months=muac["toAgeMonths"],
            muac_sam_below_mm=d(muac["samBelowMm"]), muac_mam_below_mm=d(muac["mamBelowMm"]),
            sam_whz_below=d(data["sam"]["whzBelow"]), sam_oedema=bool(data["sam"]["oedema"]),
            mam_whz_below=d(data["mam"]["whzBelow"]),
        )


@functools.cache
def load_growth_ruleset(name: str = DEFAULT_RULESET) -> GrowthRuleset:
    return GrowthRuleset.from_json(rulesets.load_json("growth", name))


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    indicator: Indicator
    zscore: Decimal | None  # rounded to 2 decimals; None when not computable (see reason)
    classification: str | None = None  # e.g. "stunting"; for acfa the MUAC class (sam/mam/normal)
    implausible: bool = False  # WHO flag: keep the value, but suspect a measurement error
    table: str | None = None  # WHO table used: wfa, lhfa, wfl, wfh, bfa, hcfa, acfa
    table_key: Decimal | None = None  # age in days, or the length/height in cm
    value: Decimal | None = None  # value compared with the table (adjusted length, BMI, ...)
    reason: str | None = None  # why zscore is None: missing, oedema, age-out-of-range, ...


@dataclass(frozen=True)
class GrowthResult:
    ruleset: str
    sex: str
    age_days: int | None
    measured_length_height_cm: Decimal | None
    length_height_cm: Decimal | None  # after the lying/standing adjustment
    recumbent: bool | None
    position_adjustment_cm: Decimal
    position_implausible: bool  # standing measured under 9 months (anthro c9mo_flag)
    bmi: Decimal | None
    oedema: bool
    indicators: Mapping[Indicator, IndicatorResult]
    muac_classification: str | None  # sam | mam | normal, for 6-59 months
    sam_criteria: tuple[str, ...]  # which of muac / whz / oedema make this SAM
    mam: bool

    @property
    def sam(self) -> bool:
        return bool(self.sam_criteria)

    @property
    def severe_stunting(self) -> bool:
        return self.indicators[Indicator.LHFA].classification == "severe-stunting"

    def z(self, indicator: Indicator | str) -> Decimal | None:
        return self.indicators[Indicator(indicator)].zscore


def lms_zscore(y: float, lms: LMS) -> float:
    power, median, cv = lms
    if power == 0:
        return math.log(y / median) / cv
    return ((y / median) ** power - 1) / (cv * power)


def restricted_zscore(y: float, lms: LMS) -> float:
    """LMS z with WHO's linear extension beyond ±3 SD (weight-based indicators, MUAC)."""
    z = lms_zscore(y, lms)
    if -3 <= z <= 3:
        return z
    power, median, cv = lms

    def sd(k: int) -> float:
        if power == 0:
            return median * math.exp(cv * k)
        return median * (1 + power * cv * k) ** (1 / power)

    if z > 3:
        sd3, sd2 = sd(3), sd(2)
        return 3 + (y - sd3) / (sd3 - sd2)
    sd3n, sd2n = sd(-3), sd(-2)
    return -3 + (y - sd3n) / (sd2n - sd3n)


def round_z(z: float) -> Decimal:
    rounded = Decimal(f"{round(z, 2):.2f}")
    return rounded if rounded != 0 else Decimal("0.00")


def interpolated_lms(table: LmsTable, sex: int, length_cm: Decimal) -> LMS | None:
    """L, M, S at a length, linear between the 0.1 cm rows (as anthro interpolates)."""
    low = (length_cm / _TENTH).to_integral_value(rounding=ROUND_FLOOR)
    fraction = float(length_cm / _TENTH - low)
    lower = table.row(sex, int(low))
    if lower is None:
        return None
    if fraction == 0:
        return lower
    upper = table.row(sex, int(low) + 1)
    if upper is None:
        return None
    return tuple(a + fraction * (b - a) for a, b in zip(lower, upper, strict=True))  # type: ignore[return-value]


def growth_zscores(
    *,
    sex: str,
    birth_date: dt.date | None = None,
    measurement_date: dt.date | None = None,
    age_days: int | None = None,
    weight_kg: Number | None = None,
    length_height_cm: Number | None = None,
    recumbent: bool | None = None,
    head_circumference_cm: Number | None = None,
    muac_cm: Number | None = None,
    oedema: bool = False,
    ruleset: str | GrowthRuleset = DEFAULT_RULESET,
) -> GrowthResult:
    """Z-scores and classifications for one set of measurements taken on one day.

    sex: "male" or "female". Age: either birth_date and measurement_date, or age_days, or neither
    (then only weight-for-length/height is computed, chosen by `recumbent`, unadjusted).
    recumbent: required with length_height_cm: True if lying length was measured, False if
    standing height. Units: kg and cm (see clinical.units to convert). All indicators are always
    present in the result; those that cannot be computed have zscore None and a reason.
    """
    rules = ruleset if isinstance(ruleset, GrowthRuleset) else load_growth_ruleset(ruleset)
    if sex not in SEX_CODES:
        raise ValueError("growth standards need sex 'male' or 'female'")
    sex_code = SEX_CODES[sex]
    if birth_date is not None or measurement_date is not None:
        if birth_date is None or measurement_date is None or age_days is not None:
            raise ValueError("give birth_date and measurement_date together, or age_days")
        age_days = age_in_days(birth_date, measurement_date)
    if age_days is not None and age_days < 0:
        raise ValueError("age cannot be negative")
    if length_height_cm is not None and recumbent is None:
        raise ValueError("recumbent must be given explicitly with length_height_cm (True = lying length)")

    weight = _positive(weight_kg)
    measured_length = _positive(length_height_cm)
    head = _positive(head_circumference_cm)
    muac = _positive(muac_cm)
    age_months = None if age_days is None else Decimal(age_days) / rules.days_per_month
    age_ok = age_months is not None and age_months < rules.maximum_age_months

    # Lying vs standing.
    adjustment = Decimal(0)
    position_implausible = False
    if measured_length is not None and age_months is not None:
        # anthro: a standing measurement under 9 months is suspect (its c9mo flag), but it is still
        # converted to a length like any other standing measurement under 731 days.
        position_implausible = not recumbent and age_months < rules.standing_implausible_below_months
        if not recumbent and age_days is not None and age_days < rules.switch_days:
            adjustment = rules.position_adjustment_cm
        elif recumbent and age_days is not None and age_days >= rules.switch_days:
            adjustment = -rules.position_adjustment_cm
    length = None if measured_length is None else measured_length + adjustment
    bmi = None
    if weight is not None and length is not None:
        bmi = weight / (length / 100) ** 2

    def by_age(indicator: Indicator, table_name: str, value: Decimal | None, given: bool,
               weight_based: bool = False) -> IndicatorResult:
        if not given:
            return IndicatorResult(indicator, None, reason="missing")
        if value is None:
            return IndicatorResult(indicator, None, reason="non-positive-measurement")
        if age_days is None:
            return IndicatorResult(indicator, None, reason="age-unknown")
        if weight_based and oedema:
            return IndicatorResult(indicator, None, reason="oedema")
        table = load_table(table_name)
        lms = table.row(sex_code, age_days) if age_ok else None
        if lms is None:
            return IndicatorResult(indicator, None, table=table_name, reason="age-out-of-range")
        return _scored(rules, indicator, value, lms, table_name, Decimal(age_days))

    indicators: dict[Indicator, IndicatorResult] = {
        Indicator.WFA: by_age(Indicator.WFA, "wfa", weight, weight_kg is not None, weight_based=True),
        Indicator.LHFA: by_age(Indicator.LHFA, "lhfa", length, length_height_cm is not None),
        Indicator.BFA: by_age(Indicator.BFA, "bfa", bmi,
                              weight_kg is not None and length_height_cm is not None, weight_based=True),
        Indicator.HCFA: by_age(Indicator.HCFA, "hcfa", head, head_circumference_cm is not None),
        Indicator.ACFA: by_age(Indicator.ACFA, "acfa", muac, muac_cm is not None),
    }
    indicators[Indicator.WFLH] = _weight_for_length(
        rules, sex_code, weight, length, weight_kg is not None and length_height_cm is not None, recumbent,
        age_days, age_ok, oedema)

    muac_class = None
    if muac is not None and age_months is not None and (
            rules.muac_from_months <= age_months < rules.muac_to_months):
        muac_mm = muac * 10
        if muac_mm < rules.muac_sam_below_mm:
            muac_class = "sam"
        elif muac_mm < rules.muac_mam_below_mm:
            muac_class = "mam"
        else:
            muac_class = "normal"
    indicators[Indicator.ACFA] = dataclasses.replace(indicators[Indicator.ACFA], classification=muac_class)
    if position_implausible:
        for indicator in (Indicator.LHFA, Indicator.WFLH, Indicator.BFA):
            if indicators[indicator].zscore is not None:
                indicators[indicator] = dataclasses.replace(indicators[indicator], implausible=True)

    whz = indicators[Indicator.WFLH].zscore
    criteria = []
    if muac_class == "sam":
        criteria.append("muac")
    if whz is not None and whz < rules.sam_whz_below:
        criteria.append("whz")
    if oedema and rules.sam_oedema:
        criteria.append("oedema")
    mam = not criteria and (muac_class == "mam" or (whz is not None and whz < rules.mam_whz_below))

    return GrowthResult(
        ruleset=rules.name, sex=sex, age_days=age_days, measured_length_height_cm=measured_length,
        length_height_cm=length, recumbent=recumbent, position_adjustment_cm=adjustment,
        position_implausible=position_implausible, bmi=bmi, oedema=oedema,
        indicators=MappingProxyType({i: indicators[i] for i in Indicator}), muac_classification=muac_class,
        sam_criteria=tuple(criteria), mam=mam,
    )


def _positive(value: Number | None) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value)
    return number if number > 0 else None


def _scored(rules: GrowthRuleset, indicator: Indicator, value: Decimal, lms: LMS, table: str,
            key: Decimal) -> IndicatorResult:
    spec = rules.indicators[indicator]
    raw = restricted_zscore(float(value), lms) if spec.restricted_tails else lms_zscore(float(value), lms)
    z = round_z(raw)
    return IndicatorResult(indicator, z, spec.classify(z), spec.implausible(z), table, key, value)


def _weight_for_length(
    rules: GrowthRuleset, sex_code: int, weight: Decimal | None, length: Decimal | None,
    given: bool, recumbent: bool | None, age_days: int | None, age_ok: bool, oedema: bool,
) -> IndicatorResult:
    ind = Indicator.WFLH
    if not given:
        return IndicatorResult(ind, None, reason="missing")
    if weight is None or length is None:
        return IndicatorResult(ind, None, reason="non-positive-measurement")
    if oedema:
        return IndicatorResult(ind, None, reason="oedema")
    if age_days is not None:
        if not age_ok:
            return IndicatorResult(ind, None, reason="age-out-of-range")
        use_length = age_days < rules.switch_days
    else:
        use_length = bool(recumbent)
    table_name, (low, high) = ("wfl", rules.wfl_range_cm) if use_length else ("wfh", rules.wfh_range_cm)
    if not low <= length <= high:
        return IndicatorResult(ind, None, table=table_name, table_key=length, reason="length-out-of-range")
    lms = interpolated_lms(load_table(table_name), sex_code, length)
    if lms is None:  # cannot happen inside the range; kept so a table gap is never a crash
        return IndicatorResult(ind, None, table=table_name, table_key=length, reason="length-out-of-range")
    return _scored(rules, ind, weight, lms, table_name, length)
