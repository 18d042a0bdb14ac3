"""Turn sampled z-scores into measurements with WHO's LMS curves (inverse of the z-score formula).

The curves are clinical's own WHO tables (clinical/data/growth), the ones Puente scores children
with: a generated child measures what the rules will judge. Only for *generating* plausible
children; the scoring itself is clinical.growth.
"""

from __future__ import annotations

from math import exp, floor

from clinical.growth_tables import LMS, load_table

STANDING_FROM_DAYS = 731  # WHO: recumbent length under 731 days, standing height from then


def lms(table_name: str, sex: int, x: float) -> LMS:
    """L, M, S at `x` (age in days, or length in cm for wfl/wfh), interpolated between the table's
    rows and held at its ends."""
    table = load_table(table_name)
    key = x * 10 if table.by_length else x
    key = min(max(key, table.first_key), table.last_key)
    low = floor(key)
    below, above = table.row(sex, low), table.row(sex, min(low + 1, table.last_key))
    assert below is not None and above is not None
    f = key - low
    return (below[0] + f * (above[0] - below[0]), below[1] + f * (above[1] - below[1]),
            below[2] + f * (above[2] - below[2]))


def _value(curve: LMS, z: float) -> float:
    big_l, m, s = curve
    if abs(big_l) < 1e-9:
        # L = 0 is the log-normal limit of the Box-Cox transform.
        return m * exp(s * z)
    return m * (1 + big_l * s * z) ** (1 / big_l)


def length_cm(sex: int, age_days: int, haz: float) -> float:
    """Recumbent length (under 731 days) or standing height for a length/height-for-age z-score."""
    return _value(lms("lhfa", sex, age_days), haz)


def weight_table(age_days: int) -> str:
    """Weight-for-length under 731 days, weight-for-height from then."""
    return "wfl" if age_days < STANDING_FROM_DAYS else "wfh"


def weight_kg(sex: int, age_days: int, length: float, whz: float) -> float:
    """Weight for a weight-for-length (under 731 days) or weight-for-height z-score."""
    # Clamp the tails: the Box-Cox inverse is undefined far out and nobody weighs -10 SD.
    return _value(lms(weight_table(age_days), sex, length), max(-4.5, min(4.5, whz)))
