"""A patient's anthropometry grouped by day, with the WHO z-scores of each day.

Measurements taken the same day go together (weight-for-length needs both); when a day has two
of a kind (a re-weighing, a duplicate upload) the latest taken counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from clinical import GrowthResult, Indicator, UnitError, growth_zscores, length_to_cm, weight_to_kg
from rules.fhir_in import Kind, Measurement

GROWTH_KINDS = frozenset({Kind.WEIGHT, Kind.LENGTH, Kind.HEIGHT, Kind.HEAD, Kind.MUAC})
SLOT = {Kind.WEIGHT: "weight", Kind.LENGTH: "length", Kind.HEIGHT: "length", Kind.HEAD: "head", Kind.MUAC: "muac"}
# Which measurements each indicator reads; the first is the one its derived Observation is named after.
SOURCES: MappingProxyType[Indicator, tuple[str, ...]] = MappingProxyType({
    Indicator.WFA: ("weight",),
    Indicator.LHFA: ("length",),
    Indicator.WFLH: ("weight", "length"),
    Indicator.BFA: ("weight", "length"),
    Indicator.HCFA: ("head",),
    Indicator.ACFA: ("muac",),
})
ANCHORED: MappingProxyType[str, tuple[Indicator, ...]] = MappingProxyType({
    slot: tuple(i for i, sources in SOURCES.items() if sources[0] == slot)
    for slot in ("weight", "length", "head", "muac")
})


def anchored_indicators(kind: Kind) -> tuple[Indicator, ...]:
    """Indicators whose derived Observation is named after a measurement of this kind."""
    return ANCHORED[SLOT[kind]] if kind in SLOT else ()


@dataclass(frozen=True)
class GrowthDay:
    date: dt.date
    chosen: dict[str, Measurement]  # slot (weight, length, head, muac) -> the measurement that counts
    considered: tuple[Measurement, ...]  # every growth measurement of the day, chosen or not
    result: GrowthResult | None
    reason: str | None = None  # why there is no result
    notes: tuple[str, ...] = field(default_factory=tuple)

    def sources(self, indicator: Indicator) -> tuple[Measurement, ...]:
        """The measurements the indicator reads (all present, or empty)."""
        found = tuple(self.chosen.get(slot) for slot in SOURCES[indicator])
        return () if any(m is None for m in found) else found  # type: ignore[return-value]


def growth_days(
    measurements: Iterable[Measurement], *, birth_date: dt.date | None, sex: str | None
) -> list[GrowthDay]:
    by_day: dict[dt.date, list[Measurement]] = {}
    for m in measurements:
        if m.kind in GROWTH_KINDS:
            by_day.setdefault(m.date, []).append(m)
    return [growth_day(day, items, birth_date=birth_date, sex=sex) for day, items in sorted(by_day.items())]


def growth_day(
    day: dt.date, measurements: Iterable[Measurement], *, birth_date: dt.date | None, sex: str | None
) -> GrowthDay:
    considered = tuple(sorted(measurements, key=lambda m: (m.when, m.id)))
    chosen: dict[str, Measurement] = {}
    for m in considered:  # later ones win
        chosen[SLOT[m.kind]] = m
    if birth_date is None:
        return GrowthDay(day, chosen, considered, None, "the patient has no full birthDate")
    if sex is None:
        return GrowthDay(day, chosen, considered, None, "growth standards need the patient's sex (male or female)")
    if day < birth_date:
        return GrowthDay(day, chosen, considered, None, "measured before the birth date")
    notes: list[str] = []
    values: dict[str, object] = {}
    for slot, m in list(chosen.items()):
        try:
            if slot == "weight":
                values["weight_kg"] = weight_to_kg(m.value, m.unit)
            elif slot == "length":
                values["length_height_cm"] = length_to_cm(m.value, m.unit)
                values["recumbent"] = m.kind is Kind.LENGTH
            elif slot == "head":
                values["head_circumference_cm"] = length_to_cm(m.value, m.unit)
            else:
                values["muac_cm"] = length_to_cm(m.value, m.unit)
        except UnitError as exc:
            notes.append(f"{m.reference}: {exc}")
            del chosen[slot]
    result = growth_zscores(sex=sex, birth_date=birth_date, measurement_date=day, **values)  # type: ignore[arg-type]
    return GrowthDay(day, chosen, considered, result, notes=tuple(notes))
