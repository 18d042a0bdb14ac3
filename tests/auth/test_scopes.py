"""SMART scopes v1 and v2 (SMART App Launch 2, "Scopes for requesting clinical data")."""

from __future__ import annotations

import pytest

from auth.principal import Principal
from auth.scopes import grant_scopes, parse_scope


def caller(*scopes: str, patient: str | None = None) -> Principal:
    return Principal("s", scopes=frozenset(scopes), patient=patient)


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("system/Observation.rs", "rs"),
        ("user/Observation.cruds", "cruds"),
        ("user/Observation.cu", "cu"),
        ("system/*.read", "rs"),  # v1 read => v2 rs
        ("system/*.write", "cud"),  # v1 write => v2 cud
        ("user/Observation.*", "cruds"),  # v1 * => v2 cruds
    ],
)
def test_v1_and_v2_permissions(scope, allowed):
    principal = caller(scope)
    assert {letter for letter in "cruds" if principal.allows("Observation", letter)} == set(allowed)


def test_scope_names_one_type_or_all():
    principal = caller("system/ServiceRequest.rs")
    assert principal.allows("ServiceRequest", "r")
    assert not principal.allows("Task", "r")
    assert caller("system/*.rs").allows("Task", "s")


@pytest.mark.parametrize("scope", ["user/Observation.dus", "user/Observation.rc", "user/Observation.",
                                   "user/Observation.x", "users/Observation.r", "user/observation.r",
                                   "Observation.read", "user/*", ""])
def test_undefined_or_out_of_order_scopes_grant_nothing(scope):
    assert parse_scope(scope) is None
    assert not any(caller(scope).allows("Observation", letter) for letter in "cruds")


def test_search_parameter_scopes_are_recognised_but_grant_nothing():
    scope = "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    parsed = parse_scope(scope)
    assert parsed is not None and parsed.restricted
    assert not caller(scope).allows("Observation", "r")


def test_patient_scopes_need_a_patient_in_context():
    assert not caller("patient/*.rs").allows("Observation", "r")
    assert caller("patient/*.rs", patient="Patient/p1").allows("Observation", "r")
    assert not caller("patient/*.r", patient="Patient/p1").allows("Observation", "s")


def test_admin_without_scopes_is_an_internal_caller():
    assert Principal("audit", is_admin=True).allows("AuditEvent", "c")
    assert not Principal("admin-client", is_admin=True, scopes=frozenset({"system/*.rs"})).allows("Patient", "c")


def test_grant_keeps_what_is_registered_and_narrows_the_rest():
    registered = ["system/ServiceRequest.rs", "system/Task.rus", "system/Patient.r"]
    requested = ["system/ServiceRequest.read", "system/Task.cruds", "system/Observation.rs", "user/Task.rs",
                 "system/Patient.rs?name=x"]
    granted = grant_scopes(requested, registered, contexts=("system",))
    assert granted == ["system/ServiceRequest.read", "system/Task.rus"]


def test_grant_understands_wildcards_and_v1_registrations():
    assert grant_scopes(["user/Observation.rs", "offline_access"], ["user/*.read", "offline_access"],
                        contexts=("user",)) == ["user/Observation.rs", "offline_access"]
    assert grant_scopes(["offline_access"], ["user/*.read"], contexts=("user",)) == []
