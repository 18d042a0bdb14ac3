"""A clinic's and a CHW's access rules judged on each candidate row, for statements that name their few rows.

storage.access states each rule as the set of every pk its caller may see, which a statement tests
with `pk IN (...)`. A clinic's set is its whole referral history, a CHW's everything about her
catchment, and the database builds it in full for every statement that tests it (a UNION cannot be
probed): on a PostgreSQL never analysed, a clinic with 2,000 referrals took 0.9 s to read one
Patient by id and with 20,000, 39 s; a CHW with 3,000 patients 6 s to read one Observation. A
read by id, a reference check, the subscription match of a write, an `_include` page and a search a
reference pins test a handful of rows, so here the same rules are asked the other way: does THIS
row have references that make it the caller's? Each question is a scalar subquery correlated to the
row, answered by index probes from the row's own reference rows (by resource_pk) or from the rows
that name it (by target), so its cost follows the row's references, not the caller's history, and
its plan needs no statistics.

The rules are those storage.access._clinic and _user state; tests/storage/test_access_candidates.py
checks that both forms select the same rows, type by type, live and deleted, current and history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, and_, literal, or_, select, union_all

from storage.search.sql import fenced
from storage.tables import resources, search_reference


def _some(*conditions: Any) -> ColumnElement[bool]:
    """Whether a row meets `conditions` (correlated to the row being judged): a scalar subquery cut
    at its first row, not EXISTS. PostgreSQL may turn a correlated EXISTS under OR into a hashed
    subplan, i.e. build the whole set after all, and does on tables never analysed (4,501 rows read
    for one Patient where the probes read a dozen); a scalar subquery it runs for each row."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_not(None)


def _none(*conditions: Any) -> ColumnElement[bool]:
    """No row meets `conditions` (as `_some`)."""
    return select(literal(1)).where(*conditions).limit(1).scalar_subquery().is_(None)


_REFERENCE_COLUMNS = ("resource_pk", "resource_type", "param", "target_type", "target_id")
_LIVE = (search_reference,)


def _rows_of(finals: Sequence[Table], pk: Any) -> Any:
    """The reference rows of the resource `pk` in `finals` (its live ones, and those its deletion
    kept), found by that pk alone (search.sql.fenced)."""
    arms = []
    for final in finals:
        f = final.alias()
        arms.append(fenced(f, f.c.resource_pk == pk, columns=[f.c[name] for name in _REFERENCE_COLUMNS]))
    if len(arms) == 1:
        return arms[0]
    # each arm a subquery of its own: SQLite takes no LIMIT/OFFSET on a compound's arms
    return union_all(*(select(*arm.c) for arm in arms)).subquery()


def _rows_naming(target_type: str, target_id: Any) -> Any:
    """The reference rows that name `target_type/target_id`, found by the target alone (fenced too)."""
    s = search_reference.alias()
    return fenced(s, s.c.target_type == target_type, s.c.target_id == target_id)


_TASK_LINKS = ("owner", "requester")
_REQUEST_LINKS = ("performer", "requester")
_TASK_ABOUT = ("focus", "based-on")
_REFERRAL_TYPES = ("Task", "ServiceRequest")


def _names_clinic(pk: Any, resource_type: str, params: Sequence[str], org_id: str,
                  finals: Sequence[Table] = _LIVE) -> ColumnElement[bool]:
    """The resource `pk` (of `resource_type`) names the clinic through one of `params`."""
    f = _rows_of(finals, pk)
    return _some(f.c.resource_type == resource_type, f.c.param.in_(params),
                 f.c.target_type == "Organization", f.c.target_id == org_id)


def _clinic_task(pk: Any, org_id: str, finals: Sequence[Table] = _LIVE) -> ColumnElement[bool]:
    return _names_clinic(pk, "Task", _TASK_LINKS, org_id, finals)


def _clinic_request(pk: Any, org_id: str, finals: Sequence[Table] = _LIVE) -> ColumnElement[bool]:
    return _names_clinic(pk, "ServiceRequest", _REQUEST_LINKS, org_id, finals)


def _about_by_clinic_task(request_id: Any, org_id: str) -> ColumnElement[bool]:
    """The ServiceRequest `request_id` is what one of the clinic's Tasks is about."""
    t = _rows_naming("ServiceRequest", request_id)
    return _some(t.c.resource_type == "Task", t.c.param.in_(_TASK_ABOUT), _clinic_task(t.c.resource_pk, org_id))


def _is_referral(pk: Any, org_id: str) -> ColumnElement[bool]:
    """`pk` is one of the clinic's referrals: its Task, its ServiceRequest, or a request its Task
    is about (deleted or not, as storage.access._pks_of reads it)."""
    x = resources.alias()
    return or_(_clinic_task(pk, org_id), _clinic_request(pk, org_id),
               _some(x.c.pk == pk, x.c.resource_type == "ServiceRequest", _about_by_clinic_task(x.c.id, org_id)))


def _named_by_referral(resource_type: str, resource_id: Any, params: Sequence[str], org_id: str) -> ColumnElement[bool]:
    """The resource `resource_type/resource_id` is named through `params` by one of the clinic's
    referrals (only Tasks and ServiceRequests can be)."""
    s = _rows_naming(resource_type, resource_id)
    return _some(s.c.resource_type.in_(_REFERRAL_TYPES), s.c.param.in_(params), _is_referral(s.c.resource_pk, org_id))


def _based_on_clinic_request(pk: Any, resource_type: str, org_id: str, finals: Sequence[Table]) -> ColumnElement[bool]:
    """The resource `pk` is `based-on` a ServiceRequest of the clinic (its own, or its Task's)."""
    f = _rows_of(finals, pk)
    x = resources.alias()
    return _some(
        f.c.resource_type == resource_type, f.c.param == "based-on", f.c.target_type == "ServiceRequest",
        or_(_some(x.c.resource_type == "ServiceRequest", x.c.id == f.c.target_id, _clinic_request(x.c.pk, org_id)),
            _about_by_clinic_task(f.c.target_id, org_id)),
    )


def clinic_sees(org_id: str, resource_type: str, table: FromClause, pk: Any,
                finals: Sequence[Table], patient_links: Sequence[str],
                referral_names: Sequence[str]) -> ColumnElement[bool]:
    """Whether the row of `table` (of `resource_type`, pk column `pk`) is the clinic's to see.

    `finals`: where the LAST step of a rule reads references (storage.access: search_reference, and
    deleted_reference too for reads that answer deletions)."""
    of_type = table.c.resource_type == resource_type
    if resource_type == "Task":
        return _clinic_task(pk, org_id, finals)
    if resource_type == "ServiceRequest":
        return or_(_clinic_request(pk, org_id, finals), and_(of_type, _about_by_clinic_task(table.c.id, org_id)))
    if resource_type == "Organization":
        return and_(of_type, table.c.id == org_id)
    if resource_type == "Patient":
        return and_(of_type, _named_by_referral("Patient", table.c.id, patient_links, org_id))
    return or_(and_(of_type, _named_by_referral(resource_type, table.c.id, referral_names, org_id)),
               _based_on_clinic_request(pk, resource_type, org_id, finals))


def authored_by(pk: Any, resource_type: str, author: str) -> ColumnElement[bool]:
    """The row's resource was first written by `author` (storage.access._authored, per row)."""
    x = resources.alias()
    return _some(x.c.pk == pk, x.c.resource_type == resource_type, x.c.created_by == author)


# ---- CHWs and supervisors ----------------------------------------------------------------------


def _followed_by_team(patient_pk: Any, team: Any, finals: Sequence[Table] = _LIVE) -> ColumnElement[bool]:
    """The Patient `patient_pk` has a practitioner of `team` as its general practitioner."""
    g = _rows_of(finals, patient_pk)
    return _some(g.c.resource_type == "Patient", g.c.param == "general-practitioner",
                 g.c.target_type == "Practitioner", g.c.target_id.in_(team))


def _in_care_team_of(patient_id: Any, practitioner_id: str, patient_links: Sequence[str]) -> ColumnElement[bool]:
    """A CareTeam the practitioner takes part in is about the Patient `patient_id`."""
    s = _rows_naming("Patient", patient_id)
    p = _rows_of(_LIVE, s.c.resource_pk)
    return _some(s.c.resource_type == "CareTeam", s.c.param.in_(patient_links),
                 _some(p.c.resource_type == "CareTeam", p.c.param == "participant",
                       p.c.target_type == "Practitioner", p.c.target_id == practitioner_id))


def _registered_by_team(patient_pk: Any, team: Any, deleted: Sequence[bool]) -> ColumnElement[bool]:
    """A practitioner of `team` wrote the Patient's first version (it is deleted as `deleted` allows)."""
    x = resources.alias()
    member_ids = team.subquery()
    authors = select(literal("Practitioner/") + member_ids.c[0]).correlate(None)
    return _some(x.c.pk == patient_pk, x.c.resource_type == "Patient", x.c.created_by.in_(authors),
                 x.c.deleted.in_(list(deleted)))


def _in_catchment(
    patient_id: Any, practitioner_id: str, team: Any, patient_links: Sequence[str]
) -> ColumnElement[bool]:
    """The Patient `patient_id` is one the practitioner looks after (storage.access._catchment_ids,
    its live form: followed by the team, about a CareTeam of theirs, or registered by the team)."""
    x = resources.alias()
    return or_(
        _some(x.c.resource_type == "Patient", x.c.id == patient_id,
              or_(_followed_by_team(x.c.pk, team), _registered_by_team(x.c.pk, team, (False,)))),
        _in_care_team_of(patient_id, practitioner_id, patient_links),
    )


def user_sees(practitioner_id: str, team: Any, authors: Any, resource_type: str, table: FromClause, pk: Any,
              finals: Sequence[Table], *, patient_links: Sequence[str], care_team_links: Sequence[str],
              practitioner_links: Sequence[str], shared_without_patient: bool) -> ColumnElement[bool]:
    """Whether the row of `table` is the CHW's (or supervisor's) to see: storage.access._user asked of
    the row. `team`: the practitioners whose patients are theirs; `authors`: whose writes they see
    (themselves, or their teams for a supervisor); `patient_links` / `practitioner_links`: how
    `resource_type` names a Patient / a practitioner; `shared_without_patient`: a row of this type
    that names no Patient is shared like reference data. A Patient and every other patient-data type
    only: the caller decides the types seen whole or not at all."""
    of_type = table.c.resource_type == resource_type
    if resource_type == "Patient":
        deleted = tuple(final is not search_reference for final in finals)
        return and_(of_type, or_(
            _followed_by_team(pk, team, finals),
            _in_care_team_of(table.c.id, practitioner_id, care_team_links),
            _registered_by_team(pk, team, deleted),
        ))
    # One probe of the row's references, either link: about a Patient of theirs, or by one of them.
    f = _rows_of(finals, pk)
    links = [and_(f.c.param.in_(patient_links), f.c.target_type == "Patient",
                  _in_catchment(f.c.target_id, practitioner_id, team, care_team_links))]
    if practitioner_links:
        links.append(and_(f.c.param.in_(practitioner_links), f.c.target_type == "Practitioner",
                          f.c.target_id.in_(authors)))
    alternatives = [_some(f.c.resource_type == resource_type, or_(*links))]
    if shared_without_patient:
        s = _rows_of(_LIVE, pk)
        alternatives.append(and_(of_type, _none(
            s.c.resource_type == resource_type, s.c.param.in_(patient_links), s.c.target_type == "Patient")))
    return or_(*alternatives)
