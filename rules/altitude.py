"""Residence altitude for the hemoglobin adjustment: from a Location, else the deployment default.

Where the patient lives, in order:
1. the Patient's `residence-location` extension (valueReference to a Location);
2. the Location of the Encounter the measurement was taken in (CHWs measure at home, and the
   visit's Location is the community);
Either Location may carry no altitude itself: then its `partOf` chain is climbed (a district has one).
Otherwise the configured default (PUENTE_DEFAULT_ALTITUDE_M). The source is always reported, and a
residence Location found without any altitude is reported too (`unknown_at`): a highland community
with no altitude recorded must not pass silently for sea level.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from clinical import codes
from rules.fhir_in import Resource, reference_id
from rules.lookup import read_resource
from storage.repository import FhirRepository

_MAX_PART_OF = 5


@dataclass(frozen=True)
class Altitude:
    metres: Decimal
    location_id: str | None  # None: the deployment default
    unknown_at: str | None = None  # a Location the patient lives in whose altitude nobody recorded


async def residence_altitude(
    repository: FhirRepository, patient: Resource, encounter_id: str | None, default_m: Decimal
) -> Altitude:
    candidates: list[str] = []
    for extension in patient.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == codes.RESIDENCE_LOCATION_EXTENSION:
            location_id = reference_id(extension.get("valueReference"), "Location")
            if location_id:
                candidates.append(location_id)
    if encounter_id:
        encounter = await read_resource(repository, "Encounter", encounter_id)
        for entry in (encounter or {}).get("location") or ():
            location_id = reference_id((entry or {}).get("location"), "Location")
            if location_id:
                candidates.append(location_id)
    unknown_at = None
    for location_id in candidates:
        found, exists = await _location_altitude(repository, location_id)
        if found is not None:
            return found
        if exists and unknown_at is None:
            unknown_at = location_id
    return Altitude(default_m, None, unknown_at)


async def _location_altitude(repository: FhirRepository, location_id: str) -> tuple[Altitude | None, bool]:
    """The altitude of the Location or of the nearest place it is part of; and whether the Location exists."""
    seen: set[str] = set()
    current: str | None = location_id
    while current and current not in seen and len(seen) < _MAX_PART_OF:
        seen.add(current)
        location = await read_resource(repository, "Location", current)
        if location is None:
            return None, current != location_id
        value = (location.get("position") or {}).get("altitude")
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return Altitude(Decimal(str(value)), current), True
        current = reference_id(location.get("partOf"), "Location")
    return None, True
