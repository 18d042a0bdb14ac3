"""A patient's stored resources, found by search (subject/patient reference and code).

Everything the operations and the pregnancy/growth context need from other records goes through
`patient_resources`, so it works as well as the repository's search does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from api.clinical.fhir_in import Measurement, Resource
from clinical import codes
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError
from storage.repository import FhirRepository


async def patient_resources(
    repository: FhirRepository,
    resource_type: str,
    patient_id: str,
    *,
    reference_param: str = "subject",
    coded: Iterable[tuple[str, str]] = (),
    extra: Iterable[tuple[str, str]] = (),
    skip_ids: Iterable[str] = (),
) -> list[Resource]:
    """Current resources of `resource_type` about Patient/`patient_id`, optionally with one of the
    (system, code) pairs in `coded`."""
    query = [(reference_param, f"Patient/{patient_id}")]
    tokens = ",".join(f"{system}|{code}" for system, code in coded)
    if tokens:
        query.append(("code", tokens))
    query.extend(extra)
    skip = set(skip_ids)
    return [
        fhir_json.loads(version.content)
        for version in await repository.search_current(resource_type, query)
        if version.id not in skip and version.content is not None
    ]


async def patient_measurements(
    repository: FhirRepository, patient_id: str, loinc_codes: Iterable[str], *, on: dt.date | None = None,
    skip_ids: Iterable[str] = (),
) -> list[Measurement]:
    """The patient's usable measurements with those codes; `on`: only those taken that (local) day."""
    window: list[tuple[str, str]] = []
    if on is not None:
        # A day either side: the local date of a timestamp can differ from its UTC date.
        window = [("date", f"ge{on - dt.timedelta(days=1)}"), ("date", f"le{on + dt.timedelta(days=1)}")]
    observations = await patient_resources(
        repository, "Observation", patient_id, coded=[(codes.LOINC, code) for code in loinc_codes], extra=window,
        skip_ids=skip_ids,
    )
    measurements = (Measurement.from_observation(o) for o in observations)
    # The subject check guards against a search that matched on another reference element.
    return [m for m in measurements
            if m is not None and m.patient_id == patient_id and (on is None or m.date == on)]


async def read_resource(repository: FhirRepository, resource_type: str, resource_id: str) -> Resource | None:
    """The current resource, or None when it is missing, deleted or not visible."""
    try:
        version = await repository.read(resource_type, resource_id)
    except FhirError:
        return None
    return None if version.content is None else fhir_json.loads(version.content)
