"""A clinic's and a CHW's access rules asked of each row (storage.access_candidates) select the same
rows as the sets they are stated as (storage.access), on both databases: every type the rules treat
apart, live and deleted resources, current rows and history, with and without deletions answered.

Then the reason for the second form: a clinic's read by id reads a number of rows that follows the
row's own references, not the clinic's referral history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER, Principal
from fhir_mappings.outcomes import NotFound
from storage import access
from storage.database import transaction
from storage.repository import FhirRepository
from storage.tables import resource_history, resources

CLINIC = Principal(subject="client:clinic-a", client_id="clinic-a", organization="Organization/a",
                   scopes=frozenset({"system/*.rs"}))
OTHER_CLINIC = Principal(subject="client:clinic-b", client_id="clinic-b", organization="Organization/b",
                         scopes=frozenset({"system/*.rs"}))
CHW = Principal(subject="user:ana", practitioner="Practitioner/chw1", role="chw", scopes=frozenset({"user/*.rs"}))
OTHER_CHW = Principal(subject="user:eva", practitioner="Practitioner/chw3", role="chw",
                      scopes=frozenset({"user/*.rs"}))
SUPERVISOR = Principal(subject="user:sara", practitioner="Practitioner/sup1", role="supervisor",
                       scopes=frozenset({"user/*.rs"}))
TYPES = ("Task", "ServiceRequest", "Patient", "Organization", "Observation", "Condition", "Encounter",
         "CareTeam", "Device", "Location", "AuditEvent", "Flag")


def _ref(target: str) -> dict[str, str]:
    return {"reference": target}


def _request(rid: str, patient: str, **links: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": rid, "status": "active", "intent": "order",
            "subject": _ref(f"Patient/{patient}"), **links}


def _task(tid: str, patient: str, **links: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "id": tid, "status": "requested", "intent": "order",
            "for": _ref(f"Patient/{patient}"), **links}


def _observation(oid: str, patient: str, **links: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "x"},
            "subject": _ref(f"Patient/{patient}"), **links}


# Each line says why its resource is (a) or is not (b) clinic a's to see.
PROGRAMME: list[dict[str, Any]] = [
    {"resourceType": "Organization", "id": "a", "name": "A"},
    {"resourceType": "Organization", "id": "b", "name": "B"},
    *({"resourceType": "Patient", "id": f"p{n}"} for n in range(1, 10)),
    _request("sr-performed", "p1", performer=[_ref("Organization/a")]),  # a: its performer
    _request("sr-requested", "p2", requester=_ref("Organization/a")),  # a: its requester
    _request("sr-of-task", "p3"),  # a: its Task's focus
    _request("sr-based", "p4"),  # a: its Task's based-on
    _request("sr-other", "p5", performer=[_ref("Organization/b")]),  # b
    _request("sr-to-delete", "p6", performer=[_ref("Organization/a")]),  # a, then deleted
    _task("t-owned", "p7", owner=_ref("Organization/a"), focus=_ref("ServiceRequest/sr-of-task")),
    _task("t-requested", "p8", requester=_ref("Organization/a"), basedOn=[_ref("ServiceRequest/sr-based")]),
    _task("t-other", "p9", owner=_ref("Organization/b"), focus=_ref("ServiceRequest/sr-other")),
    _task("t-to-delete", "p9", owner=_ref("Organization/a")),  # a, then deleted
    _observation("o-based", "p1", basedOn=[_ref("ServiceRequest/sr-performed")]),  # a: based on its request
    _observation("o-based-task", "p3", basedOn=[_ref("ServiceRequest/sr-of-task")]),  # a: on its Task's request
    _observation("o-based-other", "p5", basedOn=[_ref("ServiceRequest/sr-other")]),  # b
    _observation("o-plain", "p1"),  # nobody's referral names it
    _observation("o-to-delete", "p2", basedOn=[_ref("ServiceRequest/sr-requested")]),  # a, then deleted
    {"resourceType": "Condition", "id": "c-reason", "subject": _ref("Patient/p1")},  # a: a reason named
    {"resourceType": "Condition", "id": "c-plain", "subject": _ref("Patient/p1")},
    {"resourceType": "Encounter", "id": "e-info", "status": "finished", "class": {"code": "HH"},
     "subject": _ref("Patient/p2")},  # a: supporting info of its request
]
# Who looks after whom: chw1 and chw2 share a CareTeam (a team); sup1 works at the Location chw1 does.
COMMUNITY: list[dict[str, Any]] = [
    *({"resourceType": "Practitioner", "id": p} for p in ("chw1", "chw2", "chw3", "sup1")),
    {"resourceType": "Location", "id": "sector-1", "name": "Sector 1"},
    {"resourceType": "PractitionerRole", "id": "role-chw1", "practitioner": _ref("Practitioner/chw1"),
     "location": [_ref("Location/sector-1")]},
    {"resourceType": "PractitionerRole", "id": "role-sup1", "practitioner": _ref("Practitioner/sup1"),
     "location": [_ref("Location/sector-1")]},
    {"resourceType": "CareTeam", "id": "ct-team", "participant": [{"member": _ref("Practitioner/chw1")},
                                                                 {"member": _ref("Practitioner/chw2")}]},
    {"resourceType": "CareTeam", "id": "ct-family", "subject": _ref("Patient/k3"),
     "participant": [{"member": _ref("Practitioner/chw1")}]},
    {"resourceType": "CareTeam", "id": "ct-stranger", "subject": _ref("Patient/k9"),
     "participant": [{"member": _ref("Practitioner/chw3")}]},
    {"resourceType": "Device", "id": "scale-1"},  # about nobody: shared
    {"resourceType": "Patient", "id": "k1", "generalPractitioner": [_ref("Practitioner/chw1")]},
    {"resourceType": "Patient", "id": "k2", "generalPractitioner": [_ref("Practitioner/chw2")]},  # a teammate's
    {"resourceType": "Patient", "id": "k3"},  # a CareTeam of chw1 is about her
    {"resourceType": "Patient", "id": "k4", "generalPractitioner": [_ref("Practitioner/chw1")]},  # deleted
    {"resourceType": "Patient", "id": "k9", "generalPractitioner": [_ref("Practitioner/chw3")]},  # not theirs
    _observation("w-k1", "k1"), _observation("w-k2", "k2"), _observation("w-k3", "k3"),
    _observation("w-k4", "k4"), _observation("w-k9", "k9"),
    _observation("w-k9-by-chw1", "k9", performer=[_ref("Practitioner/chw1")]),  # what chw1 did
    _observation("w-k9-by-chw2", "k9", performer=[_ref("Practitioner/chw2")]),
    _observation("w-k1-deleted", "k1"),
    {"resourceType": "Encounter", "id": "visit-k9", "status": "finished", "class": {"code": "HH"},
     "subject": _ref("Patient/k9"), "participant": [{"individual": _ref("Practitioner/chw1")}]},
    {"resourceType": "Flag", "id": "flag-k1", "status": "active", "code": {"text": "x"}, "subject": _ref("Patient/k1")},
]
NAMING = [  # referrals that name other resources, written after them
    _request("sr-names", "p1", performer=[_ref("Organization/a")], reasonReference=[_ref("Condition/c-reason")],
             supportingInfo=[_ref("Encounter/e-info")]),
]
BY_A = "7d7b3c1e-2a4f-4c3b-9a53-0f1e2d3c4b5a"  # a Patient clinic a registered itself
BY_CHW = "0b9f1e7c-5d2a-4e6b-8c3d-2f1a0e9d8c7b"  # a Patient chw1 registered
BY_CHW_DELETED = "5c4b3a29-1807-4f6e-9d5c-4b3a29180706"  # another, deleted since
DELETED = [("ServiceRequest", "sr-to-delete"), ("Task", "t-to-delete"), ("Observation", "o-to-delete"),
           ("Patient", "k4"), ("Observation", "w-k1-deleted"), ("Patient", BY_CHW_DELETED)]


async def _load(engine: AsyncEngine) -> None:
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        for resource in [*PROGRAMME, *COMMUNITY, *NAMING]:
            resource = dict(resource)
            await repository.update(resource["resourceType"], resource["id"], resource)
        # a clinic's own write: seen by it whatever the rules say
        writer = Principal(subject=CLINIC.subject, client_id=CLINIC.client_id, organization=CLINIC.organization,
                           scopes=frozenset({"system/*.cruds"}))
        await FhirRepository(connection, writer).create({"resourceType": "Patient"}, resource_id=BY_A)
        chw_writer = Principal(subject=CHW.subject, practitioner=CHW.practitioner, role="chw",
                               scopes=frozenset({"user/*.cruds"}))
        for registered in (BY_CHW, BY_CHW_DELETED):
            await FhirRepository(connection, chw_writer).create({"resourceType": "Patient"}, resource_id=registered)
        for resource_type, resource_id in DELETED:
            await repository.delete(resource_type, resource_id)


async def _rows(engine: AsyncEngine, principal: Principal, resource_type: str, table: Any,
                *, deleted_too: bool, each: bool) -> set[tuple[str, int]]:
    conditions = access.visible(principal, resource_type, table, deleted_too=deleted_too, each=each)
    statement = select(table.c.id, table.c.version_id).where(table.c.resource_type == resource_type, *conditions)
    async with transaction(engine, write=False) as connection:
        return {(row.id, row.version_id) for row in await connection.execute(statement)}


async def test_each_row_is_judged_as_the_set_judges_it(engine: AsyncEngine):
    await _load(engine)
    by_whom: dict[Principal, set[str]] = {CLINIC: set(), CHW: set(), SUPERVISOR: set()}
    for principal in (CLINIC, OTHER_CLINIC, CHW, OTHER_CHW, SUPERVISOR):
        for resource_type in TYPES:
            for table in (resources, resource_history):
                for deleted_too in (False, True):
                    as_set = await _rows(engine, principal, resource_type, table, deleted_too=deleted_too, each=False)
                    as_each = await _rows(engine, principal, resource_type, table, deleted_too=deleted_too, each=True)
                    assert as_each == as_set, (principal.organization, resource_type, table.name, deleted_too)
                    if principal in by_whom:
                        by_whom[principal] |= {resource_id for resource_id, _ in as_each}
    # the data exercises every arm of the rules, and leaves out what is someone else's or nobody's
    seen_somewhere = by_whom[CLINIC]
    assert seen_somewhere >= {
        "a", "sr-performed", "sr-requested", "sr-of-task", "sr-based", "sr-names", "sr-to-delete",
        "t-owned", "t-requested", "t-to-delete", "p1", "p2", "p3", "p4", "p7", "p8", BY_A,
        "o-based", "o-based-task", "o-to-delete", "c-reason", "e-info",
    }
    assert not seen_somewhere & {"b", "sr-other", "t-other", "o-based-other", "o-plain", "c-plain", "p5", "p9"}
    assert by_whom[CHW] >= {"k1", "k2", "k3", "k4", BY_CHW, BY_CHW_DELETED, "w-k1", "w-k2", "w-k3",
                            "w-k9-by-chw1", "w-k1-deleted", "visit-k9", "flag-k1", "ct-team", "ct-family",
                            "scale-1", "sector-1"}
    # a deleted Patient grants nothing: her weight is no longer the CHW's to see
    assert not by_whom[CHW] & {"k9", "w-k9", "w-k4", "w-k9-by-chw2", "ct-stranger", "p1", "sr-performed"}
    # sup1's team is who works at her Location (chw1), not chw1's CareTeam (chw2)
    assert {"w-k9-by-chw1", "k1", "w-k1"} <= by_whom[SUPERVISOR]
    assert not by_whom[SUPERVISOR] & {"k9", "w-k9", "k2", "w-k9-by-chw2"}


@pytest.mark.parametrize("interaction", ["read", "read_many", "vread", "history"])
async def test_a_clinic_reads_by_id_what_its_rule_lets_it(engine: AsyncEngine, interaction: str):
    """Through the repository: what the clinic may see reads, the rest is not found."""
    await _load(engine)
    async with transaction(engine, write=False) as connection:
        repository = FhirRepository(connection, CLINIC)
        for resource_type, resource_id, expected in (
            ("Patient", "p3", True), ("Patient", "p5", False), ("ServiceRequest", "sr-of-task", True),
            ("Observation", "o-based-task", True), ("Observation", "o-plain", False), ("Task", "t-other", False),
        ):
            if interaction == "read_many":
                found = resource_id in await repository.read_many(resource_type, [resource_id, "missing"])
            elif interaction == "history":
                page = await repository.history(resource_type, resource_id)
                found = bool(page.versions)
            else:
                try:
                    if interaction == "read":
                        await repository.read(resource_type, resource_id)
                    else:
                        await repository.vread(resource_type, resource_id, "1")
                    found = True
                except NotFound:  # as a stranger's resource must be: never 403
                    found = False
            assert found is expected, (interaction, resource_type, resource_id)


def _rows_touched(node: dict[str, Any]) -> int:
    """Rows a PostgreSQL plan node and those under it produced, over all their loops."""
    own = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
    return own + sum(_rows_touched(child) for child in node.get("Plans", []))


async def test_a_clinics_read_by_id_reads_what_the_row_names_not_its_history(engine: AsyncEngine, backend: str):
    """A clinic with 1,500 referrals reads one of its Patients: the statement touches a few dozen
    rows (the Patient, the references to it, each referral's own reference rows), where the set
    form built the clinic's whole referral set first (the control below)."""
    referrals = 1500
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        await repository.create_many([({"resourceType": "Patient"}, f"p{n}") for n in range(referrals)])
        await repository.create_many([(_request(f"sr{n}", f"p{n}", performer=[_ref("Organization/a")]), f"sr{n}")
                                      for n in range(referrals)])
    for each in (True, False):
        statement = select(resources.c.id).where(
            resources.c.resource_type == "Patient", resources.c.id == "p7",
            *access.visible(CLINIC, "Patient", resources, deleted_too=True, each=each))
        async with transaction(engine, write=False) as connection:
            assert (await connection.execute(statement)).scalars().all() == ["p7"]
            if backend != "postgres":
                continue
            sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
            plan = (await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
        touched = _rows_touched((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
        if each:
            assert touched < 60, touched
        else:
            assert touched > referrals, touched  # the control: the set form reads the clinic's history
