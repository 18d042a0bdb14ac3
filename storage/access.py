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
exactly when the resource is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, Table, exists, false, literal, or_, select, true, union

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search.registry import registry
from storage.tables import resources, search_reference

AUDIT_EVENT = "AuditEvent"
# Reference parameters that tie a resource to the Patient it is about.
PATIENT_LINKS = ("patient", "subject", "member", "beneficiary")
# What a referral names besides its patient. R4 has no reason-reference parameter on ServiceRequest or
# Task: those rows appear once the search registry adds the (custom) parameter.
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


def visible(principal: Principal, resource_type: str, table: Table) -> list[Any]:
    """SQL conditions on `table` (resources or resource_history) limiting rows to what the caller may see."""
    if principal.is_admin:
        conditions: list[Any] = []
    elif principal.organization:
        conditions = [_clinic(principal.organization, resource_type, table)]
    elif principal.practitioner and principal.role in USER_ROLES:
        conditions = [_user(principal.practitioner, principal.role == "supervisor", resource_type, table)]
    else:
        conditions = [false()]
    if principal.patient:
        conditions.append(_patient_compartment(principal.patient, resource_type, table))
    return conditions


# ---- building blocks ---------------------------------------------------------------------------


def _ref_id(reference: str, expected_type: str) -> str:
    """The id of a "Type/id" reference ("" if it is of another type: matches nothing)."""
    kind, _, ref_id = reference.partition("/")
    return ref_id if kind == expected_type else ""


def _pk(table: Table) -> Any:
    return table.c.resource_pk if "resource_pk" in table.c else table.c.pk


def _referrers(resource_type: str, params: Iterable[str] | None, target_type: str, target_ids: Any) -> Select[Any]:
    """pks of `resource_type` resources referencing `target_type` ids in `target_ids` (through `params`, or any)."""
    r = search_reference.alias()
    ids = target_ids if isinstance(target_ids, Select | CompoundSelect) else list(target_ids)
    conditions = [r.c.resource_type == resource_type, r.c.target_type == target_type, r.c.target_id.in_(ids)]
    if params is not None:
        conditions.append(r.c.param.in_(list(params)))
    return select(r.c.resource_pk).where(*conditions)


def _targets(resource_pks: Any, params: Iterable[str], target_type: str) -> Select[Any]:
    """ids of `target_type` resources referenced through `params` by the resources `resource_pks`."""
    r = search_reference.alias()
    return select(r.c.target_id).where(
        r.c.resource_pk.in_(resource_pks), r.c.param.in_(list(params)), r.c.target_type == target_type
    )


def _ids_of(resource_type: str, pks: Any) -> Select[Any]:
    res = resources.alias()
    return select(res.c.id).where(res.c.resource_type == resource_type, res.c.pk.in_(pks))


def _pks_of(resource_type: str, ids: Any) -> Select[Any]:
    res = resources.alias()
    return select(res.c.pk).where(res.c.resource_type == resource_type, res.c.id.in_(ids))


@functools.cache
def _patient_linked(resource_type: str) -> bool:
    """Is this a type whose instances are about a Patient (it has a patient/subject/member reference)?"""
    params = registry().params_for(resource_type)
    links = [params[code] for code in PATIENT_LINKS if code in params]
    return any(p.type == "reference" and (not p.targets or "Patient" in p.targets) for p in links)


# ---- clinics -----------------------------------------------------------------------------------


def _clinic(organization: str, resource_type: str, table: Table) -> ColumnElement[bool]:
    org_id = _ref_id(organization, "Organization")
    pk, rid = _pk(table), table.c.id
    tasks = _referrers("Task", ("owner", "requester"), "Organization", [org_id])
    direct_requests = _referrers("ServiceRequest", ("performer", "requester"), "Organization", [org_id])
    requests_of_tasks = _targets(tasks, ("focus", "based-on"), "ServiceRequest")
    if resource_type == "Task":
        return pk.in_(tasks)
    if resource_type == "ServiceRequest":
        return or_(pk.in_(direct_requests), rid.in_(requests_of_tasks))
    if resource_type == "Organization":
        return rid == org_id
    referrals = union(tasks, direct_requests, _pks_of("ServiceRequest", requests_of_tasks))
    if resource_type == "Patient":
        return rid.in_(_targets(referrals, ("subject", "patient"), "Patient"))
    request_ids = union(_ids_of("ServiceRequest", direct_requests), requests_of_tasks)
    return or_(
        rid.in_(_targets(referrals, REFERRAL_NAMES, resource_type)),
        pk.in_(_referrers(resource_type, ("based-on",), "ServiceRequest", request_ids)),
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


def _catchment(practitioner_id: str) -> CompoundSelect:
    """ids of the Patients a CHW (or their supervisor) looks after."""
    followed = _referrers("Patient", ("general-practitioner",), "Practitioner", _team(practitioner_id))
    care_teams = _referrers("CareTeam", ("participant",), "Practitioner", [practitioner_id])
    return union(_ids_of("Patient", followed), _targets(care_teams, ("subject", "patient"), "Patient"))


def _user(practitioner: str, supervisor: bool, resource_type: str, table: Table) -> ColumnElement[bool]:
    practitioner_id = _ref_id(practitioner, "Practitioner")
    pk, rid = _pk(table), table.c.id
    if resource_type == "Patient":
        return rid.in_(_catchment(practitioner_id))
    if resource_type in DIRECTORY:
        return true()
    if resource_type == AUDIT_EVENT or not _patient_linked(resource_type):
        return false()
    authors = _team(practitioner_id) if supervisor else [practitioner_id]
    rules = [
        pk.in_(_referrers(resource_type, PATIENT_LINKS, "Patient", _catchment(practitioner_id))),
        # what references them: what they performed, recorded, requested, authored...
        pk.in_(_referrers(resource_type, None, "Practitioner", authors)),
    ]
    if resource_type in SHARED_WITHOUT_PATIENT:
        r = search_reference.alias()
        rules.append(
            ~exists().where(r.c.resource_pk == pk, r.c.param.in_(PATIENT_LINKS), r.c.target_type == "Patient")
        )
    return or_(*rules)


# ---- SMART launch patient ----------------------------------------------------------------------


def _patient_compartment(patient: str, resource_type: str, table: Table) -> ColumnElement[bool]:
    patient_id = _ref_id(patient, "Patient")
    if resource_type == "Patient":
        return table.c.id == patient_id
    if resource_type in DIRECTORY:
        return true()
    if not _patient_linked(resource_type):
        return false()
    return _pk(table).in_(_referrers(resource_type, PATIENT_LINKS, "Patient", [patient_id]))
