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
  PractitionerRole at a Location P is assigned to; Patients that such a CareTeam is about; and
  Patients that P or such a practitioner registered (created). Of
  patient data they see what concerns those patients, and what references them (a CHW: themselves;
  a supervisor: anyone of their teams). Shared reference data (organizations, locations, staff,
  medications, questionnaires, ...) is visible to every user;
- a launch patient (SMART `patient/` scopes) narrows all of that to that patient's records;
- anyone else sees nothing;
- and whoever wrote a resource's first version (`resources.created_by`) sees that resource.

What a write may point at, so that no write widens these rules for its caller, is storage.grants.

Each rule is stated here as the set of pks its caller may see (`pk IN (...)`), which suits a search
that walks many rows. A clinic's set is its whole referral history and a CHW's everything about
her catchment, and the database builds it in full for every statement that tests it; a statement
that names its few rows (a read by id, a reference check, an `_include` page, a write's
subscription match, a search a reference pins) asks `visible(..., each=True)` instead, and the
clinic's and the CHW's rules are then asked of each row (storage.access_candidates).

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

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    FromClause,
    Select,
    Table,
    and_,
    false,
    literal,
    or_,
    select,
    tuple_,
    union,
)

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search.registry import registry
from storage import access_candidates
from storage.search.sql import unindexed_text
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
# Rules are built once per caller and type, and cached: building them costs more than running them.
_CACHE_SIZE = 512  # entries of ~50 KB: a programme's CHWs x the types they sync


# Types only the server writes: a client (administrators included) may never create, change or
# delete one. The audit trail is written by the server in the interaction's own transaction.
SERVER_WRITTEN = frozenset({AUDIT_EVENT})


def require(principal: Principal, resource_type: str, interaction: str) -> None:
    """Refuse (403) an interaction the caller's scopes (or the type's nature) do not allow.

    The repository calls this for every read and search, and for every write at the point where it
    is known whether the write creates ("c"), updates ("u") or deletes ("d") a resource: a
    conditional update or an update-as-create needs "c" when it creates.
    """
    if resource_type in SERVER_WRITTEN:
        if interaction in "cud":
            raise Forbidden(f"{resource_type} resources are written by the server only")
        if not principal.is_admin:
            raise Forbidden(f"{resource_type} resources are for administrators")
    if not principal.allows(resource_type, interaction):
        raise Forbidden(f"The access token's scopes do not allow '{interaction}' on {resource_type}")


def allowed(principal: Principal, resource_type: str, interaction: str) -> bool:
    """Would `require` let this interaction through?"""
    if resource_type in SERVER_WRITTEN and (interaction in "cud" or not principal.is_admin):
        return False
    return principal.allows(resource_type, interaction)


def visible(
    principal: Principal, resource_type: str, table: Table | FromClause, *, deleted_too: bool = False,
    each: bool = False,
) -> list[Any]:
    """SQL conditions on `table` (resources or resource_history) limiting rows to what the caller may see.

    `deleted_too`: also deleted resources the caller could see before the deletion (reads, history);
    searches leave it off, as they never match deleted resources. Whatever the rules, a caller sees
    what it created itself (`resources.created_by`), deleted or not: a CHW's retried upload finds
    the Patients she registered before anyone made her their practitioner.

    `each`: the statement names its few rows (by id, by pk): a clinic's or a CHW's rule is then
    asked of each row (storage.access_candidates), at a cost that follows the row's references
    instead of the caller's whole history. Same rows either way.
    """
    if each and not principal.is_admin and not principal.patient and (
        principal.organization or (principal.practitioner and principal.role in USER_ROLES)
    ):
        return _each(principal, resource_type, table, deleted_too=deleted_too)
    conditions: list[Any] = []
    pk = _pk(table)
    authored = _authored(resource_type, principal.author) if not principal.is_admin and principal.author else None

    def allow(rule: Any, *, own_writes: bool) -> None:  # rule(final) -> the pks, or None: every one
        live = rule(search_reference)
        if live is None:
            return
        alternatives = [pk.in_(live)]
        if deleted_too:
            alternatives.append(pk.in_(rule(deleted_reference)))
        if own_writes and authored is not None:
            alternatives.append(pk.in_(authored))
        conditions.append(or_(*alternatives) if len(alternatives) > 1 else alternatives[0])

    if principal.is_admin:
        pass
    elif principal.organization:
        org_id = reference_id(principal.organization, "Organization")
        allow(lambda final: _clinic(org_id, resource_type, final), own_writes=True)
    elif principal.practitioner and principal.role in USER_ROLES:
        practitioner_id = reference_id(principal.practitioner, "Practitioner")
        supervisor = principal.role == "supervisor"
        allow(lambda final: _user(practitioner_id, supervisor, resource_type, final), own_writes=True)
    else:
        conditions.append(pk.in_(authored) if authored is not None else false())
    if principal.patient:
        patient_id = reference_id(principal.patient, "Patient")
        allow(lambda final: _patient_compartment(patient_id, resource_type, final), own_writes=False)
    return conditions


def _each(principal: Principal, resource_type: str, table: Table | FromClause, *, deleted_too: bool) -> list[Any]:
    """`visible(..., each=True)` for a clinic or a CHW / supervisor. Built once per caller, type and
    table when `table` is a plain table (reads by id): building these expressions costs more than
    running them, as for the sets below."""
    build = _each_cached if isinstance(table, Table) else _each_rule
    if principal.organization:
        return build("clinic", reference_id(principal.organization, "Organization"), False, principal.author,
                     resource_type, table, deleted_too)
    supervisor = principal.role == "supervisor"
    return build("user", reference_id(principal.practitioner or "", "Practitioner"), supervisor, principal.author,
                 resource_type, table, deleted_too)


def _each_rule(kind: str, whose: str, supervisor: bool, author: str | None, resource_type: str,
               table: Table | FromClause, deleted_too: bool) -> list[Any]:
    """The clinic's (`kind` "clinic", `whose` its Organization id) or the CHW's / supervisor's
    ("user", their Practitioner id) rule and own writes, as one condition asked of each row."""
    pk = _pk(table)
    finals = (search_reference, deleted_reference) if deleted_too else (search_reference,)
    if kind == "clinic":
        alternatives = [access_candidates.clinic_sees(whose, resource_type, table, pk, finals,
                                                      patient_links=_CLINIC_PATIENT_LINKS,
                                                      referral_names=REFERRAL_NAMES)]
    elif resource_type in DIRECTORY:
        return []  # everyone's to read, as `_user` says
    elif resource_type != "Patient" and (resource_type == AUDIT_EVENT or not _patient_links(resource_type)):
        alternatives = [false()]
    else:
        members = team(whose)
        alternatives = [access_candidates.user_sees(
            whose, members, members if supervisor else [whose], resource_type, table, pk, finals,
            patient_links=_patient_links(resource_type), care_team_links=_CARE_TEAM_LINKS,
            practitioner_links=_practitioner_links(resource_type),
            shared_without_patient=resource_type in SHARED_WITHOUT_PATIENT)]
    if author:
        alternatives.append(access_candidates.authored_by(pk, resource_type, author))
    return [or_(*alternatives)]


_each_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_each_rule)


def visible_any(
    principal: Principal, table: Table | FromClause, resource_types: Iterable[str], *, deleted_too: bool = True
) -> ColumnElement[bool]:
    """What the caller may see of `table` (resources or resource_history) among all `resource_types`
    at once: system-level history, with which a CHW app or a clinic syncs in one call.

    The same rules as `visible`, type by type, but grouped so that the statement stays a handful of
    clauses however many types the caller may read (types whose rule is the same share one).
    """
    types = sorted(set(resource_types))
    if principal.is_admin:
        return table.c.resource_type.in_(types)
    pk = _pk(table)
    everything: list[str] = []  # types the caller may see all of
    branches: list[ColumnElement[bool]] = []
    grouped: dict[Any, list[str]] = {}
    for resource_type in types:
        conditions = visible(principal, resource_type, table, deleted_too=deleted_too)
        if not conditions:
            everything.append(resource_type)
            continue
        key = _rule_shape(principal, resource_type)
        if key is None:
            branches.append(and_(table.c.resource_type == resource_type, *conditions))
        else:
            grouped.setdefault(key, []).append(resource_type)
    if everything:
        branches.append(table.c.resource_type.in_(everything))
    for key, members in grouped.items():
        branches.append(and_(table.c.resource_type.in_(members), *_shared_rule(principal, key, members, pk,
                                                                                deleted_too=deleted_too)))
    return or_(*branches) if branches else false()


def _rule_shape(principal: Principal, resource_type: str) -> Any:
    """A key shared by the types whose rule `_shared_rule` can state for all of them at once; None
    for the few types with a rule of their own (a clinic's Tasks, a CHW's Patients...)."""
    if principal.patient:
        return None  # a launch patient's few types: narrowed per type
    if principal.organization:
        return None if resource_type in ("Task", "ServiceRequest", "Organization", "Patient") else "clinic-named"
    if principal.practitioner and principal.role in USER_ROLES:
        if resource_type == "Patient" or resource_type in SHARED_WITHOUT_PATIENT:
            return None
        return "user-linked"
    return "own-writes"


def _shared_rule(
    principal: Principal, key: str, members: list[str], pk: Any, *, deleted_too: bool
) -> list[ColumnElement[bool]]:
    """`visible`'s conditions for every type of `members` (same rule shape `key`), as one clause."""
    finals = (search_reference, deleted_reference) if deleted_too else (search_reference,)
    alternatives: list[Any] = []
    if key == "clinic-named":
        org_id = reference_id(principal.organization or "", "Organization")
        alternatives.extend(pk.in_(_clinic_named_any(org_id, tuple(members), final)) for final in finals)
    elif key == "user-linked":
        practitioner_id = reference_id(principal.practitioner or "", "Practitioner")
        supervisor = principal.role == "supervisor"
        alternatives.extend(pk.in_(_user_linked_any(practitioner_id, supervisor, tuple(members), final))
                            for final in finals)
    if principal.author:
        alternatives.append(pk.in_(_own(select(resources.c.pk).where(
            resources.c.resource_type.in_(members), resources.c.created_by == principal.author))))
    return [or_(*alternatives)] if alternatives else [false()]


# ---- building blocks ---------------------------------------------------------------------------
# Each rule is a table-independent SELECT of the resource pks a caller may see, built once per
# (caller, type) and cached: building these expressions costs more than running them.

PkSelect = Select[Any] | CompoundSelect


def _own(statement: Select[Any]) -> Select[Any]:
    """A subquery with its own FROM, never correlated to the statement it is put in.

    The plain tables (no aliases: they cost memory and time) may also be in the enclosing query's
    FROM; without this SQLAlchemy would correlate the subquery to them and change its meaning.
    """
    return statement.correlate(None)


def reference_id(reference: str, expected_type: str) -> str:
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
    # From the resources to their references: left the choice, both databases walked every reference
    # to the type (ix_search_reference_target) without statistics, i.e. every Patient's general
    # practitioner to find one practitioner's CareTeams, a cost that grew with the programme.
    return _own(
        select(r.c.target_id).where(
            r.c.resource_pk.in_(resource_pks), r.c.param.in_(list(params)),
            unindexed_text(r.c.target_type) == target_type,
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

# How a referral names its Patient, for a clinic's rule (both forms: here and storage.access_candidates).
_CLINIC_PATIENT_LINKS = ("subject", "patient")


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
        return _pks_of("Patient", _targets(referrals, _CLINIC_PATIENT_LINKS, "Patient"))
    request_ids = union(_ids_of("ServiceRequest", direct_requests), requests_of_tasks)
    return union(
        _pks_of(resource_type, _targets(referrals, REFERRAL_NAMES, resource_type)),
        _referrers(resource_type, ("based-on",), "ServiceRequest", request_ids, final),
    )


# ---- CHWs and supervisors ----------------------------------------------------------------------

# How a CareTeam names the Patient it is about (both forms: here and storage.access_candidates).
_CARE_TEAM_LINKS = ("subject", "patient")


def team(practitioner_id: str) -> CompoundSelect:
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
    """ids of the Patients a CHW (or their supervisor) looks after (`final`: see `_referrers`): those
    their team follows as generalPractitioner, those of their CareTeams, and those their team
    registered (a new Patient is its registering CHW's to follow: she sees the z-scores, flags and
    referral outcomes written about it before anyone assigns her). Registering a Patient gives
    nothing else: the new resource is the only one about it."""
    members = team(practitioner_id)
    followed = _referrers("Patient", ("general-practitioner",), "Practitioner", members, final)
    care_teams = _referrers("CareTeam", ("participant",), "Practitioner", [practitioner_id])
    member_ids = members.subquery()
    registered = _own(select(resources.c.id).where(
        resources.c.resource_type == "Patient",
        resources.c.created_by.in_(select(literal("Practitioner/") + member_ids.c[0])),
        resources.c.deleted.is_(final is deleted_reference),  # a deleted Patient grants nothing
    ))
    return union(_ids_of("Patient", followed), _targets(care_teams, _CARE_TEAM_LINKS, "Patient"), registered)


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
    authors = team(practitioner_id) if supervisor else [practitioner_id]
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


def _pairs(members: tuple[str, ...], links: Any) -> list[tuple[str, str]]:
    return [(t, p) for t in members for p in links(t)]


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _user_linked_any(practitioner_id: str, supervisor: bool, members: tuple[str, ...], final: Table) -> PkSelect:
    """`_user`'s rule for all the patient-data types `members` at once (system-level history)."""
    r = final
    authors = team(practitioner_id) if supervisor else [practitioner_id]
    rules: list[Select[Any]] = []
    for target_type, pairs, targets in (
        ("Patient", _pairs(members, _patient_links), _catchment_ids(practitioner_id)),
        ("Practitioner", _pairs(members, _practitioner_links), authors),
    ):
        if pairs:
            rules.append(_own(select(r.c.resource_pk).where(
                tuple_(r.c.resource_type, r.c.param).in_(pairs), r.c.target_type == target_type,
                r.c.target_id.in_(targets))))
    return union(*rules) if len(rules) > 1 else rules[0] if rules else _NOTHING


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _clinic_named_any(org_id: str, members: tuple[str, ...], final: Table) -> PkSelect:
    """`_clinic`'s rule for every type but Task, ServiceRequest, Organization and Patient, at once:
    what the clinic's referrals name, and the results based on them."""
    kinds = list(members)
    tasks = _referrers("Task", ("owner", "requester"), "Organization", [org_id])
    direct_requests = _referrers("ServiceRequest", ("performer", "requester"), "Organization", [org_id])
    requests_of_tasks = _targets(tasks, ("focus", "based-on"), "ServiceRequest")
    referrals = union(tasks, direct_requests, _pks_of("ServiceRequest", requests_of_tasks))
    request_ids = union(_ids_of("ServiceRequest", direct_requests), requests_of_tasks)
    s = search_reference
    named = _own(select(s.c.target_type, s.c.target_id).where(
        s.c.resource_pk.in_(referrals), s.c.param.in_(list(REFERRAL_NAMES)), s.c.target_type.in_(kinds)))
    based_on = _own(select(final.c.resource_pk).where(
        final.c.resource_type.in_(kinds), final.c.param == "based-on", final.c.target_type == "ServiceRequest",
        final.c.target_id.in_(request_ids)))
    return union(
        _own(select(resources.c.pk).where(tuple_(resources.c.resource_type, resources.c.id).in_(named))), based_on
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _authored(resource_type: str, author: str) -> Select[Any]:
    """pks of the resources of this type whose first version `author` wrote."""
    return _own(select(resources.c.pk).where(resources.c.resource_type == resource_type,
                                             resources.c.created_by == author))


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
