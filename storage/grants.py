"""No write widens what its caller may see: the references that confer access, and who may set them.

`storage.access` lets a caller see resources through references: a clinic sees the Tasks its
Organization owns and, through them, the ServiceRequests and Patients they name; a CHW sees the
Patients of the CareTeams she is part of. A write that adds such a reference could therefore give
its caller (or someone else) more than an administrator granted. So every *new* reference of the
kinds below (one the resource's previous version did not already have) must satisfy its rule, or the
write is refused before anything is stored. The repository asks `check_references` for every
version a caller who is not an administrator writes: HTTP create, update, PATCH, conditional
writes, and every entry of a batch or transaction.

The table is the one the README shows; `RULES` is the single source of both.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden, NotFound
from fhir_mappings.search import ReferenceRow, extract_index_values
from fhir_mappings.search.registry import registry
from storage import access, search_rows
from storage.driver_sql import read
from storage.tables import resources

Caller = Literal["clinic", "user", "patient", "client"]
Requirement = Literal["visible", "own organization", "own team", "administrator"]
ANY = "*"


@dataclass(frozen=True)
class Rule:
    """New `resource_type.params` references to `target_type`, written by `callers`, must meet `requirement`."""

    resource_type: str  # ANY: every type that has such a parameter
    params: tuple[str, ...]
    target_type: str  # ANY: whatever the reference points at
    callers: frozenset[Caller]
    requirement: Requirement
    grants: str  # what the reference gives, in words (README)

    def covers(self, resource_type: str, param: str, target_type: str | None) -> bool:
        return (
            self.resource_type in (ANY, resource_type)
            and param in self.params
            and self.target_type in (ANY, target_type)
        )


_EVERYONE: frozenset[Caller] = frozenset({"clinic", "user", "patient", "client"})
_CLINIC: frozenset[Caller] = frozenset({"clinic"})
_USER: frozenset[Caller] = frozenset({"user"})

RULES: tuple[Rule, ...] = (
    Rule(ANY, access.PATIENT_LINKS, "Patient", _EVERYONE, "visible",
         "the resource joins that patient's record (a CHW or clinic who sees the patient sees it)"),
    Rule("Task", ("owner", "requester"), "Organization", _CLINIC, "own organization",
         "the Organization's clinic sees the Task, its ServiceRequest and its patient"),
    Rule("ServiceRequest", ("performer", "requester"), "Organization", _CLINIC, "own organization",
         "the Organization's clinic sees the referral and its patient"),
    Rule("Task", ("focus", "based-on"), "ServiceRequest", _CLINIC, "visible",
         "the Task's clinic sees that ServiceRequest"),
    Rule("Task", access.REFERRAL_NAMES, ANY, _CLINIC, "visible",
         "the Task's clinic sees what the referral cites (the hemoglobin, the z-scores)"),
    Rule("ServiceRequest", access.REFERRAL_NAMES, ANY, _CLINIC, "visible",
         "the referral's clinic sees what it cites"),
    Rule(ANY, ("based-on",), "ServiceRequest", _CLINIC, "visible",
         "the referral's clinic sees the result (an outcome Observation, an Encounter)"),
    Rule("Patient", ("general-practitioner",), "Practitioner", _USER, "own team",
         "the practitioner and their team see the patient"),
    Rule("CareTeam", ("participant",), "Practitioner", _USER, "own team",
         "each participant sees the others' patients and the CareTeam's patient"),
    Rule("PractitionerRole", ("practitioner", "location"), ANY, _EVERYONE, "administrator",
         "the practitioner sees the patients of everyone assigned to the same Location"),
)


def caller_kind(principal: Principal) -> Caller:
    if principal.organization:
        return "clinic"
    if principal.practitioner and principal.role in access.USER_ROLES:
        return "user"
    if principal.patient:
        return "patient"
    return "client"


@functools.cache
def _rules_for(caller: Caller, resource_type: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The parameters of `resource_type` some rule watches for this kind of caller, and the
    extractor's `skip` set that leaves only those (so checking costs a few paths, not the ~40)."""
    params = registry().params_for(resource_type)
    watched = tuple(sorted({
        code for rule in RULES if caller in rule.callers and rule.resource_type in (ANY, resource_type)
        for code in rule.params if code in params and params[code].type == "reference"
    }))
    return watched, frozenset(params) - frozenset(watched)


def watched_references(principal: Principal, resource: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """(param, target type, target id) of `resource`'s local references that some rule watches."""
    resource_type = str(resource["resourceType"])
    watched, skip = _rules_for(caller_kind(principal), resource_type)
    if not watched:
        return set()
    values = extract_index_values(dict(resource), base_url=search_rows.base_url(), skip=skip)
    return {
        (v.param, v.target_type, v.target_id)
        for v in values
        if isinstance(v, ReferenceRow) and v.target_type and v.target_id
    }


async def check_references(
    connection: AsyncConnection,
    principal: Principal,
    resource_type: str,
    new: Iterable[tuple[str, str, str]],
    *,
    pending: set[tuple[str, str]],
) -> None:
    """Refuse (403, or 404 where existence must not leak) any of the `new` references that its rule forbids.

    `pending`: (type, id) of resources this caller writes in the same transaction (a Bundle's own
    entries): they are the caller's own, visible once written.
    """
    caller = caller_kind(principal)
    must_see: dict[str, dict[str, str]] = defaultdict(dict)  # target type -> id -> the element naming it
    team: dict[str, str] = {}
    for param, target_type, target_id in sorted(new):
        element = f"{resource_type}.{param}"
        for rule in RULES:
            if caller not in rule.callers or not rule.covers(resource_type, param, target_type):
                continue
            if rule.requirement == "administrator":
                raise Forbidden(f"{element} is set by an administrator only: {rule.grants}")
            if rule.requirement == "own organization" and f"{target_type}/{target_id}" != principal.organization:
                raise Forbidden(
                    f"{element} may name only this client's own Organization ({principal.organization}); "
                    "re-assigning to another organisation is for the referral's requester or an administrator"
                )
            if rule.requirement == "own team":
                team[target_id] = element
            if rule.requirement == "visible" and (target_type, target_id) not in pending:
                must_see[target_type][target_id] = element
    for target_type, ids in must_see.items():
        seen = await _visible_ids(connection, principal, target_type, ids)
        for target_id, element in sorted(ids.items()):
            if target_id not in seen:
                raise NotFound(
                    f"{element} refers to {target_type}/{target_id}, which is not known to this client"
                )
    if team:
        members = await _team_ids(connection, principal, team)
        for target_id, element in sorted(team.items()):
            if target_id not in members:
                raise Forbidden(
                    f"{element} may name only the signed-in practitioner or a member of their team, "
                    f"not Practitioner/{target_id}"
                )


async def _visible_ids(
    connection: AsyncConnection, principal: Principal, target_type: str, ids: Mapping[str, str]
) -> set[str]:
    statement = select(resources.c.id).where(
        resources.c.resource_type == target_type,
        resources.c.id.in_(sorted(ids)),
        resources.c.deleted.is_(False),
        *access.visible(principal, target_type, resources, each=True),
    )
    return set((await read(connection, statement)).scalars())


async def _team_ids(connection: AsyncConnection, principal: Principal, ids: Mapping[str, str]) -> set[str]:
    practitioner_id = access.reference_id(principal.practitioner or "", "Practitioner")
    team = access.team(practitioner_id).subquery()
    column = team.c[0]
    statement = select(column).where(column.in_(sorted(ids)))
    return set((await read(connection, statement)).scalars())
