"""Golden tests: Puente's z-scores against WHO's own LMS tables, computed independently here.

The reference below reads the raw WHO anthro tables from tests/data/who-growth (never the copies
committed under clinical/data) and follows the anthro R code: age in days picks the row; lying/standing
±0.7 cm around 731 days (anthro's adjust_lenhei: +0.7 to every standing measurement under 731 days,
under 9 months too); weight-for-length
below 731 days, weight-for-height from 731 days with L, M, S interpolated between 0.1 cm rows;
BMI from the adjusted length; restricted tails for weight, wflh, BMI and MUAC; z rounded to
2 decimals; z only for age < 60 months.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from clinical import Indicator, growth_zscores
from clinical.growth import lms_zscore, restricted_zscore
from clinical.growth_tables import load_table
from tests.fixtures.reference_data import WHO_GROWTH

WHO_DIR = WHO_GROWTH

RAW_FILES = {"wfa": "weianthro.txt", "lhfa": "lenanthro.txt", "wfl": "wflanthro.txt", "wfh": "wfhanthro.txt",
             "bfa": "bmianthro.txt", "hcfa": "hcanthro.txt", "acfa": "acanthro.txt"}
RESTRICTED = {"wfa", "wfl", "wfh", "bfa", "acfa"}


def read_raw(file_name: str) -> dict[tuple[int, Fraction], tuple[float, float, float]]:
    rows = {}
    with open(WHO_DIR / file_name, encoding="ascii") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            if parts:
                rows[(int(parts[0]), Fraction(parts[1]))] = (float(parts[2]), float(parts[3]), float(parts[4]))
    return rows


RAW = {name: read_raw(file_name) for name, file_name in RAW_FILES.items()}


def ref_z(y: float, lms: tuple[float, float, float], restricted: bool) -> float:
    big_l, big_m, big_s = lms
    z = ((y / big_m) ** big_l - 1) / (big_s * big_l)
    if restricted and abs(z) > 3:
        def cut(k: float) -> float:
            return big_m * (1 + big_l * big_s * k) ** (1 / big_l)
        above = 3 + (y - cut(3)) / (cut(3) - cut(2))
        below = -3 - (cut(-3) - y) / (cut(-2) - cut(-3))
        z = above if z > 3 else below
    return round(z, 2)


def reference(sex: int, age: int, weight: Fraction | None, lenhei: Fraction | None, measure: str,
              head: Fraction | None, arm: Fraction | None, oedema: bool) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(("wfa", "lhfa", "wflh", "bfa", "hcfa", "acfa"))
    months = Fraction(age) / Fraction("30.4375")
    if months >= 60:
        return out
    clen = lenhei
    if lenhei is not None:
        if age < 731 and measure == "h":
            clen = lenhei + Fraction(7, 10)
        elif age >= 731 and measure == "l":
            clen = lenhei - Fraction(7, 10)
    key = Fraction(age)
    if weight is not None and not oedema:
        out["wfa"] = ref_z(float(weight), RAW["wfa"][(sex, key)], True)
    if clen is not None:
        out["lhfa"] = ref_z(float(clen), RAW["lhfa"][(sex, key)], False)
    if weight is not None and clen is not None and not oedema:
        out["bfa"] = ref_z(float(weight) / (float(clen) / 100) ** 2, RAW["bfa"][(sex, key)], True)
        table, low_cm, high_cm = ("wfl", 45, 110) if age < 731 else ("wfh", 65, 120)
        if low_cm <= clen <= high_cm:
            low = Fraction(math.floor(clen * 10), 10)
            frac = float((clen - low) * 10)
            lower = RAW[table][(sex, low)]
            if frac:
                upper = RAW[table][(sex, low + Fraction(1, 10))]
                lms = tuple(a + frac * (b - a) for a, b in zip(lower, upper, strict=True))
            else:
                lms = lower
            out["wflh"] = ref_z(float(weight), lms, True)
    if head is not None:
        out["hcfa"] = ref_z(float(head), RAW["hcfa"][(sex, key)], False)
    if arm is not None and age >= 91:
        out["acfa"] = ref_z(float(arm), RAW["acfa"][(sex, key)], True)
    return out


def measurement(rng: random.Random, table: str, sex: int, age: int, spread: float, decimals: int) -> Fraction:
    row_age = min(max(age, 91 if table == "acfa" else 0), 1826)
    _, big_m, big_s = RAW[table][(sex, Fraction(row_age))]
    value = big_m * math.exp(big_s * rng.uniform(-spread, spread))
    return Fraction(f"{value:.{decimals}f}")


EDGE_AGES = [0, 1, 90, 91, 92, 272, 273, 274, 729, 730, 731, 732, 1825, 1826, 1827, 1830]


def children(n: int, seed: int):
    rng = random.Random(seed)
    for i in range(n):
        sex = rng.choice((1, 2))
        age = EDGE_AGES[i % len(EDGE_AGES)] if i % 10 == 0 else rng.randint(0, 1826)
        measure = rng.choice("lh")
        oedema = rng.random() < 0.05
        # spread in S units is wide enough to reach both restricted tails and implausible values
        weight = measurement(rng, "wfa", sex, age, 9, rng.choice((1, 2, 3)))
        lenhei = measurement(rng, "lhfa", sex, age, 8, rng.choice((1, 2)))
        head = measurement(rng, "hcfa", sex, age, 7, 1) if rng.random() < 0.8 else None
        arm = measurement(rng, "acfa", sex, age, 7, rng.choice((1, 2))) if rng.random() < 0.8 else None
        yield sex, age, weight, lenhei, measure, head, arm, oedema


def test_thousands_of_random_children_match_who_tables_within_0_01():
    computed = dict.fromkeys(("wfa", "lhfa", "wflh", "bfa", "hcfa", "acfa"), 0)
    off_by_rounding = 0
    for sex, age, weight, lenhei, measure, head, arm, oedema in children(4000, seed=20240611):
        expected = reference(sex, age, weight, lenhei, measure, head, arm, oedema)
        result = growth_zscores(
            sex="male" if sex == 1 else "female", age_days=age, weight_kg=exact_text(weight),
            length_height_cm=exact_text(lenhei), recumbent=measure == "l",
            head_circumference_cm=None if head is None else exact_text(head),
            muac_cm=None if arm is None else exact_text(arm), oedema=oedema,
        )
        for name, want in expected.items():
            got = result.indicators[Indicator(name)].zscore
            context = (name, sex, age, weight, lenhei, measure, head, arm, oedema, want, got)
            if want is None:
                assert got is None, context
                continue
            assert got is not None, context
            assert abs(float(got) - want) <= 0.01 + 1e-9, context
            if float(got) != want:
                off_by_rounding += 1
            computed[name] += 1
    # the comparison is not vacuous: every indicator was computed for thousands of children
    assert min(computed.values()) > 1500, computed
    assert off_by_rounding <= sum(computed.values()) // 1000, off_by_rounding


def exact_text(value: Fraction) -> str:
    """Exact decimal text of a Fraction with a power-of-ten denominator."""
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    assert Fraction(text) == value
    return text


@pytest.mark.parametrize("name", sorted(RAW_FILES))
def test_every_row_of_every_table(name):
    """Committed tables equal WHO's rows, and the LMS transform is exact at each row's SD lines."""
    table = load_table(name)
    raw = RAW[name]
    assert sum(len(rows) for rows in table.rows.values()) == len(raw)
    restricted = name in RESTRICTED
    for (sex, key), lms in raw.items():
        grid = int(key * 10) if table.by_length else int(key)
        assert table.row(sex, grid) == lms, (name, sex, key)
        big_l, big_m, big_s = lms

        def cut(k: float, big_l=big_l, big_m=big_m, big_s=big_s) -> float:
            return big_m * (1 + big_l * big_s * k) ** (1 / big_l)

        assert abs(lms_zscore(big_m, lms)) < 1e-9
        for k in (-3, -2, -1, 1, 2, 3):
            assert lms_zscore(cut(k), lms) == pytest.approx(k, abs=1e-9)
        if restricted:
            assert restricted_zscore(cut(3) + (cut(3) - cut(2)), lms) == pytest.approx(4, abs=1e-9)
            assert restricted_zscore(cut(-3) - (cut(-2) - cut(-3)), lms) == pytest.approx(-4, abs=1e-9)
