"""A patient's stored resources, found through the search index (subject/patient reference and code).

Everything the operations and the pregnancy/growth context need from other records goes through
`patient_resources`, which reads the same index rows as `Observation?subject=...&code=...`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError
from rules import measurement_keys
from rules.fhir_in import KIND_BY_LOINC, Measurement, Resource
from rules.growth_days import ANCHORED, SLOT
from storage.repository import FhirRepository


async def patient_resources(
    repository: FhirRepository,
    resource_type: str,
    patient_id: str,
    *,
    reference_param: str = "subject",
    coded: Iterable[tuple[str, str]] = (),
) -> list[Resource]:
    """Current resources of `resource_type` about Patient/`patient_id`, optionally with one of the
    (system, code) pairs in `coded`."""
    found = await repository.referring_to(resource_type, reference_param, "Patient", [patient_id], codes=list(coded))
    return [fhir_json.loads_stored(v.content) for v in found if v.content is not None]


async def patient_measurements(
    repository: FhirRepository, patient_id: str, loinc_codes: Iterable[str]
) -> list[Measurement]:
    """The patient's usable measurements with those codes."""
    return (await measurements_by_patient(repository, [patient_id], loinc_codes))[patient_id]


async def measurements_by_patient(
    repository: FhirRepository, patient_ids: Iterable[str], loinc_codes: Iterable[str], *,
    skip_ids: Iterable[str] = (), days: Iterable[dt.date] | None = None,
) -> dict[str, list[Measurement]]:
    """Each patient's usable measurements with those codes, found in one statement, by patient id;
    with `days`, only those that may have been taken on one of them.

    The day of a measurement is its local date as written, which a UTC range only approximates: the
    statement asks for every Observation dated within the widest range those days' local times can
    span (offsets run from -12:00 to +14:00), and callers pick the day themselves. That keeps a
    visit's read to the day's few Observations however long the child's record grows.
    The codes are picked here too, from all the patient's Observations: with `code` in the statement,
    PostgreSQL spent 1.7-5 ms planning it (the token table's multi-column statistics, weighed against
    every (system, code) pair) to run it in 0.05-0.2 ms; by subject alone it plans in 0.2 ms.
    """
    wanted = sorted(set(patient_ids))
    skip = set(skip_ids)
    codes = sorted(set(loinc_codes))
    kinds = {KIND_BY_LOINC[code] for code in codes}
    # Stored JSON is our own serialisation, with codes written verbatim: an Observation whose text
    # holds none of them (a z-score, a blood pressure) cannot be one of these measurements, and is
    # not parsed. About half of a screened child's Observations are derived z-scores.
    quoted = [f'"{code}"' for code in codes]
    found = await repository.referring_to("Observation", "subject", "Patient", wanted, dated=_local_days(days))
    out: dict[str, list[Measurement]] = {patient_id: [] for patient_id in wanted}
    for version in found:
        content = version.content
        if version.id in skip or content is None or not any(code in content for code in quoted):
            continue
        m = Measurement.from_observation(fhir_json.loads_stored(content))
        if m is not None and m.kind in kinds and m.patient_id in out:  # the subject names the patient
            out[m.patient_id].append(m)
    return out


async def latest_of_day(
    repository: FhirRepository, patient_id: str, day: dt.date, *, skip_ids: Iterable[str] = (),
    lock_ahead: Sequence[tuple[str, str]] | None = None,
) -> list[Measurement]:
    """The patient's latest stored growth measurement of each slot (weight, length, head, MUAC) on
    `day`, leaving out `skip_ids` (written by this transaction: the caller holds their new content).

    One statement through the measurement keys (rules.measurement_keys): it reads at most
    1 + len(skip_ids) rows per slot however many Observations the child has, that day or ever.
    `lock_ahead`: what the caller reads locked next, besides the z-scores named after the day's
    latest measurements; on PostgreSQL the same statement locks them all (one round trip fewer
    while the child's lock is held), and the caller's read_ahead finds them there.
    """
    skip = set(skip_ids)
    keys = [measurement_keys.day_key(patient_id, slot, day.isoformat()) for slot in _SLOTS]
    found = await repository.greatest_by_token(
        "Observation", measurement_keys.PARAM, keys, per_key=1 + len(skip),
        lock_ahead=lock_ahead or (), lock_suffixed=_ANCHORED_SUFFIXES if lock_ahead is not None else (),
    )
    latest: dict[str, Measurement] = {}
    for version in found:
        if version.id in skip or version.content is None:
            continue
        m = Measurement.from_observation(fhir_json.loads_stored(version.content))
        if m is None or m.patient_id != patient_id or m.date != day or m.kind not in SLOT:
            continue  # the key said otherwise: a row from before a reindex
        slot = SLOT[m.kind]
        if slot not in latest or (latest[slot].when, latest[slot].id) < (m.when, m.id):
            latest[slot] = m
    return list(latest.values())


async def growth_evidence_of_day(
    repository: FhirRepository, patient_id: str, day: dt.date, cited: Iterable[str], *, skip_ids: Iterable[str] = ()
) -> list[Measurement]:
    """Those of the `cited` Observation references that are the patient's stored growth
    measurements of `day` (not in `skip_ids`): what a Flag or referral still cites from that day
    must be judged with it, even when it is no longer the day's latest."""
    skip = set(skip_ids)
    ids = sorted({ref.removeprefix("Observation/") for ref in cited if ref.startswith("Observation/")} - skip)
    if not ids:
        return []
    found = await repository.read_many("Observation", ids)
    out = []
    for version in found.values():
        if version.deleted or version.content is None:
            continue
        m = Measurement.from_observation(fhir_json.loads_stored(version.content))
        if m is not None and m.patient_id == patient_id and m.date == day and m.kind in SLOT:
            out.append(m)
    return out


_SLOTS = sorted(set(SLOT.values()))
# The indicators whose z-scores are named after a measurement of some slot (rules.derived.derived_id):
# `{measurement id}-{indicator}` while that fits 64 characters.
_ANCHORED_SUFFIXES = sorted({indicator.value for slot in _SLOTS for indicator in ANCHORED[slot]})


def _local_days(days: Iterable[dt.date] | None) -> tuple[str, dt.datetime, dt.datetime] | None:
    """The `date` range, in UTC, of every local time whose date is one of `days` (or None: any day)."""
    if days is None:
        return None
    chosen = sorted(set(days))
    if not chosen:
        return None
    first = dt.datetime.combine(chosen[0], dt.time(), dt.UTC) - _EAST_MOST
    after = dt.datetime.combine(chosen[-1], dt.time(), dt.UTC) + dt.timedelta(days=1) + _WEST_MOST
    return "date", first, after


# A local time at UTC+14:00 is 14 hours ahead of UTC, one at UTC-12:00 12 hours behind (ISO 8601 offsets
# in use; FHIR's dateTime pattern allows no others).
_EAST_MOST = dt.timedelta(hours=14)
_WEST_MOST = dt.timedelta(hours=12)


async def read_resource(repository: FhirRepository, resource_type: str, resource_id: str) -> Resource | None:
    """The current resource, or None when it is missing, deleted or not visible."""
    try:
        version = await repository.read(resource_type, resource_id)
    except FhirError:
        return None
    return None if version.content is None else fhir_json.loads_stored(version.content)
