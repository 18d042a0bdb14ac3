"""Access rules as query filters: what a caller may do and see, applied inside the repository.

Every read, search, history and write goes through here, so the rules hold for single requests,
Bundle entries, _include/_revinclude and operations alike. A resource the caller may not see is
reported as not found (404), never as forbidden, so existence does not leak.

Who sees what (the search_reference index says who is linked to whom):

- an administrator (admin client or admin user) sees everything;
- a clinic client bound to `Organization/O` sees the Tasks owned or requested by O, the
  ServiceRequests with O as performer or requester or that such a Task is about (`focus`,
  `based-on`), and through these referrals their Patients (`subject`/`patient`), the resources
  they name (`reason-reference`, `supporting-info`, `focus`) and the results `based-on` them;
  and its own Organization. Nothing else exists for it;
- a CHW or supervisor user (`Practitioner/P`) sees the patients of their catchment: those whose
  `general-practitioner` is P, a member of a CareTeam P takes part in, or a practitioner with a
  PractitionerRole at a Location P is assigned to; and Patients that such a CareTeam is about. Of
  patient data they see what concerns those patients, and what references them (a CHW: themselves;
  a supervisor: anyone of their teams). Shared reference data (organizations, locations, staff,
  medications, questionnaires, ...) is visible to every user;
- a launch patient (SMART `patient/` scopes) narrows all of that to that patient's records;
- anyone else sees nothing.

Visibility follows the current version's index rows: older versions of a resource are visible
exactly when the resource is. A deletion removes the index rows but keeps the references in
`deleted_reference`; reads and history (`visible(..., deleted_too=True)`) let the LAST step of each
rule use them, so whoever could see a resource sees that it was deleted (410, and the deletion in
their history: CHW apps and clinics sync deletions). No rule ever grants through a deleted resource:
a deleted referral no longer shows a clinic its patient. Searches never match deleted resources.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import CompoundSelect, FromClause, Select, Table, false, literal, or_, select, union

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search.registry import registry
from storage.tables import deleted_reference, resources, search_reference

AUDIT_EVENT = "AuditEvent"
# Reference parameters that tie a resource to the Patient it is about.
PATIENT_LINKS = ("patient", "subject", "member", "beneficiary")
# What a referral names besides its patient (`reason-reference` is Puente's own parameter: R4 has none).
REFERRAL_NAMES = ("reason-reference", "supporting-info", "focus")
# Patient-compartment types whose instances may concern nobody in particular (a sector's CareTeam, a
# clinic's device): without a patient link they are shared like reference data.
SHARED_WITHOUT_PATIENT = frozenset({"CareTeam", "Device", "Group"})
# Reference data every signed-in user may read.
DIRECTORY = frozenset({
    "ActivityDefinition", "CodeSystem", "ConceptMap", "DeviceDefinition", "Endpoint", "HealthcareService",
    "Library", "Location", "Measure", "Medication", "MedicationKnowledge", "NamingSystem", "ObservationDefinition",
    "OperationDefinition", "Organization", "PlanDefinition", "Practitioner", "PractitionerRole", "Questionnaire",
    "SearchParameter", "SpecimenDefinition", "StructureDefinition", "Substance", "ValueSet",
})
USER_ROLES = ("chw", "supervisor")


def require(principal: Principal, resource_type: str, interaction: str) -> None:
    """Refuse (403) an interaction the caller's scopes do not grant."""
    if resource_type == AUDIT_EVENT:
        _require_audit(principal, interaction)
    if not principal.allows(resource_type, interaction):
        raise Forbidden(f"The access token's scopes do not allow '{interaction}' on {resource_type}")


def _require_audit(principal: Principal, interaction: str) -> None:
    # The audit trail is for administrators, and nobody rewrites it.
    if interaction in "ud":
        raise Forbidden("AuditEvents cannot be changed or deleted")
    if not principal.is_admin:
        raise Forbidden("AuditEvents are for administrators")


def visible(
    principal: Principal, resource_type: str, table: Table | FromClause, *, deleted_too: bool = False
) -> list[Any]:
    """SQL conditions on `table` (resources or resource_history) limiting rows to what the caller may see.

    `deleted_too`: also deleted resources the caller could see before the deletion (reads, history);
    searches leave it off, as they never match deleted resources.
    """
    conditions: list[Any] = []
    pk = _pk(table)

    def allow(rule: Any) -> None:  # rule(final) -> the pks, or None when every one may be seen
        live = rule(search_reference)
        if live is None:
            return
        conditions.append(or_(pk.in_(live), pk.in_(rule(deleted_reference))) if deleted_too else pk.in_(live))

    if principal.is_admin:
        pass
    elif principal.organization:
        org_id = _ref_id(principal.organization, "Organization")
        allow(lambda final: _clinic(org_id, resource_type, final))
    elif principal.practitioner and principal.role in USER_ROLES:
        practitioner_id = _ref_id(principal.practitioner, "Practitioner")
        supervisor = principal.role == "supervisor"
        allow(lambda final: _user(practitioner_id, supervisor, resource_type, final))
    else:
        conditions.append(false())
    if principal.patient:
        patient_id = _ref_id(principal.patient, "Patient")
        allow(lambda final: _patient_compartment(patient_id, resource_type, final))
    return conditions


# ---- building blocks ---------------------------------------------------------------------------
# Each rule is a table-independent SELECT of the resource pks a caller may see, built once per
# (caller, type) and cached: building these expressions costs more than running them.

_CACHE_SIZE = 512  # entries of ~50 KB: a programme's CHWs x the types they sync
PkSelect = Select[Any] | CompoundSelect


def _own(statement: Select[Any]) -> Select[Any]:
    """A subquery with its own FROM, never correlated to the statement it is put in.

    The plain tables (no aliases: they cost memory and time) may also be in the enclosing query's
    FROM; without this SQLAlchemy would correlate the subquery to them and change its meaning.
    """
    return statement.correlate(None)


def _ref_id(reference: str, expected_type: str) -> str:
    """The id of a "Type/id" reference ("" if it is of another type: matches nothing)."""
    kind, _, ref_id = reference.partition("/")
    return ref_id if kind == expected_type else ""


def _pk(table: Table | FromClause) -> Any:
    return table.c.resource_pk if "resource_pk" in table.c else table.c.pk


def _referrers(
    resource_type: str, params: Iterable[str], target_type: str, target_ids: Any, final: Table = search_reference
) -> Select[Any]:
    """pks of `resource_type` resources whose `params` reference `target_type` ids in `target_ids`.

    `final`: where the references are read; `deleted_reference` only for a rule's last step.
    """
    r = final
    ids = target_ids if isinstance(target_ids, Select | CompoundSelect) else list(target_ids)
    return _own(
        select(r.c.resource_pk).where(
            r.c.resource_type == resource_type,
            r.c.param.in_(list(params)),
            r.c.target_type == target_type,
            r.c.target_id.in_(ids),
        )
    )


def _targets(resource_pks: Any, params: Iterable[str], target_type: str) -> Select[Any]:
    """ids of `target_type` resources referenced through `params` by the resources `resource_pks`."""
    r = search_reference
    return _own(
        select(r.c.target_id).where(
            r.c.resource_pk.in_(resource_pks), r.c.param.in_(list(params)), r.c.target_type == target_type
        )
    )


def _ids_of(resource_type: str, pks: Any) -> Select[Any]:
    return _own(select(resources.c.id).where(resources.c.resource_type == resource_type, resources.c.pk.in_(pks)))


def _pks_of(resource_type: str, ids: Any) -> Select[Any]:
    ids = ids if isinstance(ids, Select | CompoundSelect) else list(ids)
    return _own(select(resources.c.pk).where(resources.c.resource_type == resource_type, resources.c.id.in_(ids)))


def _reference_params(resource_type: str, target: str, only: Iterable[str] | None = None) -> tuple[str, ...]:
    """The reference parameters of `resource_type` that may point at `target` (from the R4 registry)."""
    params = registry().params_for(resource_type)
    return tuple(
        code for code, p in params.items()
        if p.type == "reference" and (not p.targets or target in p.targets) and (only is None or code in only)
    )


@functools.cache
def _patient_links(resource_type: str) -> tuple[str, ...]:
    """How a resource of this type names the Patient it is about (empty: it is not patient data)."""
    return _reference_params(resource_type, "Patient", PATIENT_LINKS)


@functools.cache
def _practitioner_links(resource_type: str) -> tuple[str, ...]:
    """Every way a resource of this type may name a practitioner (performer, recorder, author...)."""
    return _reference_params(resource_type, "Practitioner")


# The pks of nothing: what a caller sees of a type that is not theirs to see at all.
_NOTHING: Select[Any] = select(resources.c.pk).where(false()).correlate(None)


# ---- clinics -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _clinic(org_id: str, resource_type: str, final: Table = search_reference) -> PkSelect:
    tasks = _referrers("Task", ("owner", "requester"), "Organization", [org_id])
    direct_requests = _referrers("ServiceRequest", ("performer", "requester"), "Organization", [org_id])
    requests_of_tasks = _targets(tasks, ("focus", "based-on"), "ServiceRequest")
    if resource_type == "Task":
        return _referrers("Task", ("owner", "requester"), "Organization", [org_id], final)
    if resource_type == "ServiceRequest":
        own = _referrers("ServiceRequest", ("performer", "requester"), "Organization", [org_id], final)
        return union(own, _pks_of("ServiceRequest", requests_of_tasks))
    if resource_type == "Organization":
        return _pks_of("Organization", [org_id])
    referrals = union(tasks, direct_requests, _pks_of("ServiceRequest", requests_of_tasks))
    if resource_type == "Patient":
        return _pks_of("Patient", _targets(referrals, ("subject", "patient"), "Patient"))
    request_ids = union(_ids_of("ServiceRequest", direct_requests), requests_of_tasks)
    return union(
        _pks_of(resource_type, _targets(referrals, REFERRAL_NAMES, resource_type)),
        _referrers(resource_type, ("based-on",), "ServiceRequest", request_ids, final),
    )


# ---- CHWs and supervisors ----------------------------------------------------------------------


def _team(practitioner_id: str) -> CompoundSelect:
    """ids of the practitioners whose patients are this practitioner's catchment (themselves included)."""
    care_teams = _referrers("CareTeam", ("participant",), "Practitioner", [practitioner_id])
    own_roles = _referrers("PractitionerRole", ("practitioner",), "Practitioner", [practitioner_id])
    locations = _targets(own_roles, ("location",), "Location")
    roles_there = _referrers("PractitionerRole", ("location",), "Location", locations)
    return union(
        select(literal(practitioner_id)),
        _targets(care_teams, ("participant",), "Practitioner"),
        _targets(roles_there, ("practitioner",), "Practitioner"),
    )


def _catchment_ids(practitioner_id: str, final: Table = search_reference) -> CompoundSelect:
    """ids of the Patients a CHW (or their supervisor) looks after (`final`: see `_referrers`)."""
    followed = _referrers("Patient", ("general-practitioner",), "Practitioner", _team(practitioner_id), final)
    care_teams = _referrers("CareTeam", ("participant",), "Practitioner", [practitioner_id])
    return union(_ids_of("Patient", followed), _targets(care_teams, ("subject", "patient"), "Patient"))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _user(
    practitioner_id: str, supervisor: bool, resource_type: str, final: Table = search_reference
) -> PkSelect | None:
    """pks of `resource_type` a CHW / supervisor may see; None when every one of them may be seen."""
    if resource_type == "Patient":
        return _pks_of("Patient", _catchment_ids(practitioner_id, final))
    if resource_type in DIRECTORY:
        return None
    links = _patient_links(resource_type)
    if resource_type == AUDIT_EVENT or not links:
        return _NOTHING
    authors = _team(practitioner_id) if supervisor else [practitioner_id]
    rules: list[Select[Any]] = [_referrers(resource_type, links, "Patient", _catchment_ids(practitioner_id), final)]
    if by_practitioner := _practitioner_links(resource_type):
        # what references them: what they performed, recorded, requested, authored...
        rules.append(_referrers(resource_type, by_practitioner, "Practitioner", authors, final))
    if resource_type in SHARED_WITHOUT_PATIENT and final is search_reference:
        r = search_reference
        about_a_patient = _own(
            select(r.c.resource_pk).where(
                r.c.resource_type == resource_type, r.c.param.in_(list(links)), r.c.target_type == "Patient"
            )
        )
        rules.append(
            _own(select(resources.c.pk).where(resources.c.resource_type == resource_type,
                                              resources.c.pk.not_in(about_a_patient)))
        )
    return union(*rules) if len(rules) > 1 else rules[0]


# ---- SMART launch patient ----------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _patient_compartment(patient_id: str, resource_type: str, final: Table = search_reference) -> PkSelect | None:
    if resource_type == "Patient":
        return _pks_of("Patient", [patient_id])
    if resource_type in DIRECTORY:
        return None
    links = _patient_links(resource_type)
    if not links:
        return _NOTHING
    return _referrers(resource_type, links, "Patient", [patient_id], final)
