"""Growth charts as SVG: the WHO reference curves (-3 to +3 SD, from the LMS tables) and the child's points.

The curve at z is M·(1 + L·S·z)^(1/L) (WHO 2006, the LMS method); the tables are those the z-scores
are computed with (clinical/data/growth), so chart and numbers agree.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from clinical.growth_tables import load_table

WIDTH, HEIGHT, PAD = 360, 240, 32
CURVES = ((-3, "#b00"), (-2, "#e07b00"), (0, "#0a7"), (2, "#e07b00"), (3, "#b00"))
STEP_DAYS = 30


def sd_value(lms: tuple[float, float, float], z: float) -> float:
    big_l, big_m, big_s = lms
    if abs(big_l) < 1e-9:
        return float(big_m * math.exp(big_s * z))
    return float(big_m * (1 + big_l * big_s * z) ** (1 / big_l))


def growth_chart(table: str, sex: int, unit: str, points: Sequence[tuple[int, float]], title: str) -> str:
    """An SVG chart of an age table (lhfa, wfa...) for `sex` (1 boys, 2 girls), with (age in days, value) points."""
    lms_table = load_table(table)
    last_age = max([730, *(a for a, _ in points)])
    last_age = min(1856, (last_age // 365 + 1) * 365)
    ages = list(range(0, last_age + 1, STEP_DAYS))
    curves = {z: [(a, sd_value(row, z)) for a in ages if (row := lms_table.row(sex, a))] for z, _ in CURVES}
    values = [v for c in curves.values() for _, v in c] + [v for _, v in points]
    low, high = min(values), max(values)

    def x(age: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * age / last_age

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / (high - low or 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f"<title>{title}</title>",
    ]
    for z, colour in CURVES:
        line = " ".join(f"{x(a):.1f},{y(v):.1f}" for a, v in curves[z])
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{line}"/>')
        if curves[z]:
            parts.append(f'<text x="{WIDTH - PAD + 2}" y="{y(curves[z][-1][1]) + 3:.1f}" font-size="8">{z:+d}</text>')
    for years in range(0, last_age // 365 + 1):
        parts.append(f'<text x="{x(years * 365):.1f}" y="{HEIGHT - PAD + 12}" font-size="9">{years} a</text>')
    parts.append(f'<text x="2" y="{PAD - 8}" font-size="9">{unit}</text>')
    for tick in (low, (low + high) / 2, high):
        parts.append(f'<text x="2" y="{y(tick) + 3:.1f}" font-size="8">{tick:.0f}</text>')
    for age, value in points:
        parts.append(
            f'<circle cx="{x(age):.1f}" cy="{y(value):.1f}" r="3" fill="#0b5563"><title>'
            f"{value} {unit}, {age} días</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def hemoglobin_chart(points: Sequence[tuple[dt.date, float]], cutoff: float) -> str:
    """Hemoglobin (g/dL) over time, with the anaemia cut-off as a dashed line."""
    if not points:
        return ""
    first, last = points[0][0], points[-1][0]
    span = max(1, (last - first).days)
    low, high = min([cutoff, *(v for _, v in points)]) - 1, max([cutoff, *(v for _, v in points)]) + 1

    def x(day: dt.date) -> float:
        return PAD + (WIDTH - 2 * PAD) * (day - first).days / span

    def y(value: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / (high - low)

    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in points)
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
            "<title>Hemoglobina</title>",
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(cutoff):.1f}" y2="{y(cutoff):.1f}" stroke="#b00" '
            'stroke-dasharray="4 3"/>',
            f'<text x="{WIDTH - PAD + 2}" y="{y(cutoff) + 3:.1f}" font-size="8">{cutoff}</text>',
            f'<polyline fill="none" stroke="#0b5563" points="{line}"/>',
            *(
                f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="#0b5563"><title>{v} g/dL, {d}</title></circle>'
                for d, v in points
            ),
            f'<text x="{PAD}" y="{HEIGHT - PAD + 12}" font-size="9">{first}</text>',
            f'<text x="{WIDTH - PAD - 50}" y="{HEIGHT - PAD + 12}" font-size="9">{last}</text>',
            f'<text x="2" y="{PAD - 8}" font-size="9">g/dL</text></svg>',
        ]
    )
