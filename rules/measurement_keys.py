"""The index key that lets the rules read a day's latest measurement of each kind, whatever the day holds.

Every usable growth measurement gets one extra `search_token` row (param `_rules-measurement`, not a
search parameter anyone can ask for): `code` is "{patient}|{slot}|{local date}", `system` the order
of the measurements on that day ("latest taken counts": by raw effective time, then id, as
`rules.growth_days.growth_day` orders them). The token table's value index (resource_type, param,
code, system, pk) then serves "the latest of this slot on this day" by walking one index range
backwards: a few rows, however many Observations the child has that day or ever (a device feeding
vitals, a re-weighing loop).

`system` is hex: its order must be Python's string order under any database collation, and strings
of [0-9a-f] sort alike in all of them (a locale collation ignores the punctuation of timestamps).
The rows are written, rewritten and removed with the resource's other index rows; `puente reindex`
writes them for measurements stored before this key existed.
"""

from __future__ import annotations

from typing import Any

from rules.fhir_in import Kind, Measurement
from rules.growth_days import SLOT
from storage import search_rows

PARAM = "_rules-measurement"
# Below every character of a FHIR dateTime: "2026-12-04T10:00" then sorts before "2026-12-04T10:00:00".
_SEPARATOR = " "


def day_key(patient_id: str, slot: str, day: str) -> str:
    return f"{patient_id}|{slot}|{day}"


def order_key(when: str, resource_id: str) -> str:
    return (when + _SEPARATOR + resource_id).encode().hex()


def measurement_rows(observation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    m = Measurement.from_observation(observation)
    if m is None or m.kind is Kind.HEMOGLOBIN:
        return []
    code = day_key(m.patient_id, SLOT[m.kind], m.date.isoformat())
    system = order_key(m.when, m.id)
    # Longer than the columns (512) only with ids and timestamps far past FHIR's limits: no key then,
    # rather than a clipped one that would sort wrongly.
    if len(code) > 512 or len(system) > 512:
        return []
    return [("token", {"param": PARAM, "code": code, "system": system, "text": None,
                       "type_system": None, "type_code": None})]


search_rows.register_derived_rows("Observation", measurement_rows)
