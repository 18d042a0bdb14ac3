"""Growth rules: lying/standing adjustment, table choice, cut-offs, flags, MUAC, oedema, ranges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from clinical import Indicator, growth_zscores, length_to_cm
from clinical.growth import lms_zscore
from clinical.growth_tables import load_table

W, L, WFLH, B, H, A = (Indicator.WFA, Indicator.LHFA, Indicator.WFLH, Indicator.BFA, Indicator.HCFA,
                       Indicator.ACFA)


def value_at(table: str, sex: int, key: int, z: float) -> float:
    """Measurement with z-score `z` on a table row (WHO restricted extension beyond ±3)."""
    big_l, big_m, big_s = load_table(table).row(sex, key)

    def cut(k: float) -> float:
        return big_m * (1 + big_l * big_s * k) ** (1 / big_l)

    if z > 3 and table not in ("lhfa", "hcfa"):
        return cut(3) + (z - 3) * (cut(3) - cut(2))
    if z < -3 and table not in ("lhfa", "hcfa"):
        return cut(-3) - (-3 - z) * (cut(-2) - cut(-3))
    return cut(z)


def child(age: int = 400, sex: str = "female", **kw):
    return growth_zscores(sex=sex, age_days=age, **kw)


# ----------------------------------------------------------------------------- lying / standing


def test_standing_under_two_years_adds_0_7_cm():
    standing = child(400, length_height_cm="75.0", recumbent=False, weight_kg="9")
    lying = child(400, length_height_cm="75.7", recumbent=True, weight_kg="9")
    assert standing.length_height_cm == Decimal("75.7")
    assert standing.position_adjustment_cm == Decimal("0.7")
    for indicator in (L, WFLH, B):
        assert standing.z(indicator) == lying.z(indicator)
    assert standing.indicators[WFLH].table == "wfl"
    # BMI is computed from the adjusted length (WHO anthro)
    assert standing.bmi == Decimal(9) / (Decimal("0.757") ** 2)


def test_lying_from_two_years_subtracts_0_7_cm():
    lying = child(800, length_height_cm="90.0", recumbent=True, weight_kg="12.5")
    standing = child(800, length_height_cm="89.3", recumbent=False, weight_kg="12.5")
    assert lying.length_height_cm == Decimal("89.3")
    assert lying.position_adjustment_cm == Decimal("-0.7")
    for indicator in (L, WFLH, B):
        assert lying.z(indicator) == standing.z(indicator)
    assert lying.indicators[WFLH].table == "wfh"


def test_switch_between_day_730_and_731():
    before = child(730, length_height_cm="85.0", recumbent=False, weight_kg="11")
    assert before.length_height_cm == Decimal("85.7")
    assert before.indicators[WFLH].table == "wfl"
    assert before.indicators[L].table_key == 730
    after = child(731, length_height_cm="85.7", recumbent=True, weight_kg="11")
    assert after.length_height_cm == Decimal("85.0")
    assert after.indicators[WFLH].table == "wfh"
    # the row used is the child's own age in days, on the length (L) or height (H) part of the table
    big_l, big_m, big_s = load_table("lhfa").row(2, 731)
    assert after.z(L) == Decimal(f"{round(lms_zscore(85.0, (big_l, big_m, big_s)), 2):.2f}")


@pytest.mark.parametrize(("age", "implausible"), [(30, True), (200, True), (273, True), (274, False), (730, False)])
def test_standing_under_731_days_gets_0_7_cm_and_under_nine_months_is_flagged(age, implausible):
    # WHO anthro: +0.7 cm to every standing measurement under 731 days, whatever the age; under 9
    # months (age in days / 30.4375 < 9) the measurement is flagged implausible as well.
    result = child(age, length_height_cm="65.0", recumbent=False, weight_kg="7")
    assert result.position_implausible is implausible
    assert result.length_height_cm == Decimal("65.7")
    assert result.position_adjustment_cm == Decimal("0.7")
    if implausible:  # every indicator that uses the length carries the flag
        assert all(result.indicators[i].implausible for i in (L, WFLH, B))


def test_position_must_be_explicit():
    with pytest.raises(ValueError, match="recumbent"):
        growth_zscores(sex="male", age_days=100, length_height_cm=60)


def test_weight_for_length_interpolates_between_0_1_cm_rows():
    weight = 8.3
    result = child(300, sex="male", length_height_cm="70.05", recumbent=True, weight_kg=weight)
    table = load_table("wfl")
    low, high = table.row(1, 700), table.row(1, 701)
    lms = tuple((a + b) / 2 for a, b in zip(low, high, strict=True))
    assert result.z(WFLH) == Decimal(f"{round(lms_zscore(weight, lms), 2):.2f}")
    on_row = child(300, sex="male", length_height_cm="70.1", recumbent=True, weight_kg=weight)
    assert on_row.z(WFLH) == Decimal(f"{round(lms_zscore(weight, high), 2):.2f}")


@pytest.mark.parametrize(("age", "recumbent", "length", "computed"), [
    (300, True, "44.9", False), (300, True, "45", True), (300, True, "110", True), (300, True, "110.1", False),
    (1000, False, "64.9", False), (1000, False, "65", True), (1000, False, "120", True),
    (1000, False, "120.01", False),
])
def test_weight_for_length_height_ranges(age, recumbent, length, computed):
    result = child(age, length_height_cm=length, recumbent=recumbent, weight_kg="10")
    assert (result.z(WFLH) is not None) is computed
    if not computed:
        assert result.indicators[WFLH].reason == "length-out-of-range"


def test_weight_for_length_without_age_follows_the_measured_position():
    lying = growth_zscores(sex="male", weight_kg="9", length_height_cm="75", recumbent=True)
    standing = growth_zscores(sex="male", weight_kg="9", length_height_cm="75", recumbent=False)
    assert lying.indicators[WFLH].table == "wfl" and standing.indicators[WFLH].table == "wfh"
    assert lying.length_height_cm == Decimal(75)  # no adjustment without an age
    assert lying.indicators[W].reason == "age-unknown"
    assert lying.z(L) is None


# ----------------------------------------------------------------------------- cut-offs and flags

CUTS = [
    # indicator, table, key, z, classification
    (L, "lhfa", 400, -2.0, "normal"), (L, "lhfa", 400, -2.01, "stunting"), (L, "lhfa", 400, -3.0, "stunting"),
    (L, "lhfa", 400, -3.01, "severe-stunting"), (L, "lhfa", 400, 2.5, "normal"),
    (W, "wfa", 400, -2.0, "normal"), (W, "wfa", 400, -2.01, "underweight"), (W, "wfa", 400, -3.0, "underweight"),
    (W, "wfa", 400, -3.01, "severe-underweight"), (W, "wfa", 400, 2.5, "normal"),
    (WFLH, "wfl", 750, -2.0, "normal"), (WFLH, "wfl", 750, -2.01, "wasting"), (WFLH, "wfl", 750, -3.0, "wasting"),
    (WFLH, "wfl", 750, -3.01, "severe-wasting"), (WFLH, "wfl", 750, 2.0, "normal"),
    (WFLH, "wfl", 750, 2.01, "overweight"), (WFLH, "wfl", 750, 3.0, "overweight"),
    (WFLH, "wfl", 750, 3.01, "obesity"),
    (B, "bfa", 400, 2.0, "normal"), (B, "bfa", 400, 2.01, "overweight"), (B, "bfa", 400, 3.01, "obesity"),
    (B, "bfa", 400, -2.0, "normal"), (B, "bfa", 400, -2.01, None),
]


@pytest.mark.parametrize(("indicator", "table", "key", "z", "expected"), CUTS)
def test_classification_cut_offs(indicator, table, key, z, expected):
    if table == "wfl":  # key is a length in mm; child 300 days old, lying
        kw = {"length_height_cm": f"{key / 10}", "recumbent": True, "weight_kg": value_at(table, 2, key, z)}
        result = child(300, **kw)
    elif table == "bfa":
        length = Decimal("75.0")
        bmi = value_at(table, 2, key, z)
        result = child(key, length_height_cm=length, recumbent=True, weight_kg=bmi * float(length / 100) ** 2)
    elif table == "lhfa":
        result = child(key, length_height_cm=value_at(table, 2, key, z), recumbent=True)
    else:
        result = child(key, weight_kg=value_at(table, 2, key, z))
    assert result.z(indicator) == Decimal(f"{z:.2f}")
    assert result.indicators[indicator].classification == expected


FLAGS = [
    (L, "lhfa", -6.0, False), (L, "lhfa", -6.01, True), (L, "lhfa", 6.0, False), (L, "lhfa", 6.01, True),
    (W, "wfa", -6.0, False), (W, "wfa", -6.01, True), (W, "wfa", 5.0, False), (W, "wfa", 5.01, True),
    (B, "bfa", -5.0, False), (B, "bfa", -5.01, True), (B, "bfa", 5.01, True),
    (H, "hcfa", 5.01, True), (H, "hcfa", -5.0, False), (A, "acfa", -5.01, True), (A, "acfa", 4.99, False),
]


@pytest.mark.parametrize(("indicator", "table", "z", "flagged"), FLAGS)
def test_implausible_flags_keep_the_value(indicator, table, z, flagged):
    age = 400
    if table == "bfa":
        length = Decimal("75.0")
        kw = {"length_height_cm": length, "recumbent": True,
              "weight_kg": value_at(table, 2, age, z) * float(length / 100) ** 2}
    else:
        field = {"lhfa": "length_height_cm", "wfa": "weight_kg", "hcfa": "head_circumference_cm",
                 "acfa": "muac_cm"}[table]
        kw = {field: value_at(table, 2, age, z)}
        if table == "lhfa":
            kw["recumbent"] = True
    result = child(age, **kw)
    assert result.z(indicator) == Decimal(f"{z:.2f}")
    assert result.indicators[indicator].implausible is flagged


def test_weight_for_length_flags():
    for z, flagged in ((-5.0, False), (-5.01, True), (5.01, True)):
        result = child(300, length_height_cm="75", recumbent=True, weight_kg=value_at("wfl", 2, 750, z))
        assert result.indicators[WFLH].implausible is flagged


def test_zscores_have_two_decimals():
    result = child(400, weight_kg="9.13", length_height_cm="76.42", recumbent=True, head_circumference_cm="45.3",
                   muac_cm="14.1")
    for indicator in Indicator:
        assert result.z(indicator).as_tuple().exponent == -2


# ----------------------------------------------------------------------------- MUAC, SAM, MAM


@pytest.mark.parametrize(("muac_cm", "expected"), [("11.4", "sam"), ("11.49", "sam"), ("11.5", "mam"),
                                                   ("12.4", "mam"), ("12.49", "mam"), ("12.5", "normal")])
def test_muac_classes_6_to_59_months(muac_cm, expected):
    result = child(244, muac_cm=muac_cm)
    assert result.muac_classification == expected
    assert result.indicators[A].classification == expected
    assert result.sam is (expected == "sam")
    assert result.mam is (expected == "mam")


def test_muac_in_millimetres_converts():
    assert child(244, muac_cm=length_to_cm(114, "mm")).muac_classification == "sam"
    assert child(244, muac_cm=length_to_cm(115, "mm")).muac_classification == "mam"


@pytest.mark.parametrize(("age", "classified"), [(182, False), (183, True), (1826, True)])
def test_muac_classification_only_from_6_months(age, classified):
    # 6 months = 182.6 days with WHO's 30.4375 days per month
    assert (child(age, muac_cm="11").muac_classification is not None) is classified


def test_sam_by_weight_for_length():
    sam = child(300, length_height_cm="75", recumbent=True, weight_kg=value_at("wfl", 2, 750, -3.01))
    assert sam.sam and sam.sam_criteria == ("whz",) and not sam.mam
    mam = child(300, length_height_cm="75", recumbent=True, weight_kg=value_at("wfl", 2, 750, -3.0))
    assert not mam.sam and mam.mam


def test_oedema_is_sam_and_suppresses_weight_based_zscores():
    result = child(400, weight_kg="9", length_height_cm="75", recumbent=True, oedema=True, muac_cm="11.0")
    for indicator in (W, WFLH, B):
        assert result.z(indicator) is None
        assert result.indicators[indicator].reason == "oedema"
    assert result.z(L) is not None
    assert result.sam_criteria == ("muac", "oedema")


def test_severe_stunting_property():
    assert child(400, length_height_cm=value_at("lhfa", 2, 400, -3.5), recumbent=True).severe_stunting
    assert not child(400, length_height_cm=value_at("lhfa", 2, 400, -2.5), recumbent=True).severe_stunting


# ----------------------------------------------------------------------------- ages and inputs


def test_age_limits():
    last = child(1826, weight_kg="18", muac_cm="16", head_circumference_cm="50")
    assert all(last.z(i) is not None for i in (W, A, H))
    beyond = child(1827, weight_kg="18", muac_cm="16", head_circumference_cm="50", length_height_cm="110",
                   recumbent=False)
    assert all(beyond.indicators[i].reason == "age-out-of-range" for i in Indicator)
    assert child(90, muac_cm="11").indicators[A].reason == "age-out-of-range"
    assert child(91, muac_cm="11").z(A) is not None
    assert child(0, weight_kg="3.3").z(W) is not None


def test_age_from_dates():
    by_dates = growth_zscores(sex="male", birth_date=dt.date(2024, 2, 29), measurement_date=dt.date(2025, 3, 1),
                              weight_kg="9")
    assert by_dates.age_days == 366
    assert by_dates.z(W) == growth_zscores(sex="male", age_days=366, weight_kg="9").z(W)


def test_bad_inputs():
    with pytest.raises(ValueError):
        growth_zscores(sex="unknown", age_days=10, weight_kg=3)
    with pytest.raises(ValueError):
        growth_zscores(sex="male", birth_date=dt.date(2024, 1, 1), weight_kg=3)
    with pytest.raises(ValueError):
        growth_zscores(sex="male", birth_date=dt.date(2024, 1, 2), measurement_date=dt.date(2024, 1, 1))
    result = child(100, weight_kg=0)
    assert result.z(W) is None and result.indicators[W].reason == "non-positive-measurement"
    assert child(100).indicators[W].reason == "missing"


# ----------------------------------------------------------------------------- committed tables


def test_committed_tables_are_exactly_what_the_generator_makes():
    root = Path(__file__).resolve().parents[2]
    from tests.clinical.test_clinical_growth_golden import WHO_DIR
    from tools.generate_growth_tables import build

    for name, text in build(WHO_DIR).items():
        assert (root / "clinical/data/growth" / name).read_text(encoding="ascii") == text, name
