"""Who a worklist or an indicator is about: a CHW's, a care team's, a sector's or an organisation's patients.

| subject | patients |
| --- | --- |
| `Practitioner/x` | `Patient?general-practitioner=Practitioner/x` (the CHW who follows them) |
| `CareTeam/x` | the patients of every Practitioner member of the team |
| `Location/x` | `Patient?residence=Location/x`, and of every Location `partOf` it (a district) |
| `Organization/x` | `Patient?organization=Organization/x` (the facility managing them) |

Every search runs as the caller, so a scope never reveals a patient the caller could not search for.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, NotFound
from programme.records import Resource, load_patients, reference_id
from storage import access
from storage.repository import FhirRepository

SUBJECT_TYPES = ("Practitioner", "CareTeam", "Location", "Organization")
_MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Subject:
    resource_type: str
    id: str

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


def parse_subject(value: str, name: str = "subject") -> Subject:
    kind, _, rid = (value or "").partition("/")
    if kind not in SUBJECT_TYPES or not rid or "/" in rid or len(rid) > 64:
        raise Invalid(f"{name} must be one of {', '.join(t + '/[id]' for t in SUBJECT_TYPES)}, not {value!r}")
    return Subject(kind, rid)


async def _ids(repository: FhirRepository, resource_type: str, query: list[tuple[str, str]]) -> list[str]:
    return [rid for _, rid in await repository.search_matches(resource_type, query)]


async def _read(repository: FhirRepository, subject: Subject) -> Resource:
    found = await repository.read_many(subject.resource_type, [subject.id])
    version = found.get(subject.id)
    if version is None or version.deleted or not version.content:
        raise NotFound(f"{subject.reference} is not known")
    resource: Resource = fhir_json.loads_stored(version.content)
    return resource


async def patients_in_scope(repository: FhirRepository, subject: Subject) -> list[Resource]:
    """The patients `subject` covers that the caller may see (404 if the subject itself is unknown)."""
    access.require(repository.principal, "Patient", "s")
    subject_resource = await _read(repository, subject)
    if subject.resource_type == "Practitioner":
        ids = await _ids(repository, "Patient", [("general-practitioner", subject.reference)])
    elif subject.resource_type == "Organization":
        ids = await _ids(repository, "Patient", [("organization", subject.reference)])
    elif subject.resource_type == "CareTeam":
        members = [
            reference_id(p.get("member"), "Practitioner")
            for p in subject_resource.get("participant") or ()
            if isinstance(p, dict)
        ]
        refs = sorted({f"Practitioner/{m}" for m in members if m})
        ids = await _ids(repository, "Patient", [("general-practitioner", ",".join(refs))]) if refs else []
    else:
        places = await _locations_within(repository, subject.id)
        ids = await _ids(repository, "Patient", [("residence", ",".join(f"Location/{p}" for p in places))])
    return await load_patients(repository, sorted(set(ids)))


async def _locations_within(repository: FhirRepository, location_id: str) -> list[str]:
    """The Location and those `partOf` it, down a few levels (district -> sector -> community)."""
    found, frontier = [location_id], [location_id]
    for _ in range(_MAX_DEPTH):
        if not frontier:
            break
        frontier = await _ids(repository, "Location", [("partof", ",".join(f"Location/{x}" for x in frontier))])
        frontier = [x for x in frontier if x not in found]
        found.extend(frontier)
    return found
