"""Turn sampled z-scores into measurements with WHO's LMS curves (inverse of the z-score formula).

Only for *generating* plausible children: interpolation over the thinned table in `growth_lms` is
accurate to a few hundredths of a z-score, far below measurement noise.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from math import exp

from seed.growth_lms import LENGTH_FOR_AGE, WEIGHT_FOR_HEIGHT, WEIGHT_FOR_LENGTH

Row = tuple[float, float, float, float]
STANDING_FROM_DAYS = 731  # WHO: recumbent length under 731 days, standing height from then


def _keys(table: dict[int, tuple[Row, ...]]) -> dict[int, list[float]]:
    return {sex: [row[0] for row in rows] for sex, rows in table.items()}


_LFA_KEYS = _keys(LENGTH_FOR_AGE)
_WFL_KEYS = _keys(WEIGHT_FOR_LENGTH)
_WFH_KEYS = _keys(WEIGHT_FOR_HEIGHT)


def _lms(rows: Sequence[Row], keys: list[float], x: float) -> tuple[float, float, float]:
    if x <= keys[0]:
        return rows[0][1], rows[0][2], rows[0][3]
    if x >= keys[-1]:
        return rows[-1][1], rows[-1][2], rows[-1][3]
    i = bisect_right(keys, x)
    k0, l0, m0, s0 = rows[i - 1]
    k1, l1, m1, s1 = rows[i]
    f = (x - k0) / (k1 - k0)
    return l0 + f * (l1 - l0), m0 + f * (m1 - m0), s0 + f * (s1 - s0)


def _value(lms: tuple[float, float, float], z: float) -> float:
    big_l, m, s = lms
    if abs(big_l) < 1e-9:
        # L = 0 is the log-normal limit of the Box-Cox transform.
        return m * exp(s * z)
    return m * (1 + big_l * s * z) ** (1 / big_l)


def length_cm(sex: int, age_days: int, haz: float) -> float:
    """Recumbent length (under 731 days) or standing height for a length/height-for-age z-score."""
    return _value(_lms(LENGTH_FOR_AGE[sex], _LFA_KEYS[sex], age_days), haz)


def weight_kg(sex: int, age_days: int, length: float, whz: float) -> float:
    """Weight for a weight-for-length (under 731 days) or weight-for-height z-score."""
    if age_days < STANDING_FROM_DAYS:
        lms = _lms(WEIGHT_FOR_LENGTH[sex], _WFL_KEYS[sex], length)
    else:
        lms = _lms(WEIGHT_FOR_HEIGHT[sex], _WFH_KEYS[sex], length)
    # Clamp the tails: the Box-Cox inverse is undefined far out and nobody weighs -10 SD.
    return _value(lms, max(-4.5, min(4.5, whz)))
