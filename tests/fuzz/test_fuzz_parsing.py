"""Fuzz the pure layers (issue 16): whatever comes in, the JSON parser, the limits, the validator, the
search parser and JSON Patch either accept it or raise one of our FhirErrors (rendered as a 4xx),
never another exception (a 500)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.body import parse_json
from fhir_mappings.json_limits import DEFAULT_LIMITS, check_json
from fhir_mappings.json_patch import apply
from fhir_mappings.outcomes import FhirError
from fhir_mappings.search import SearchError, parse_query
from fhir_mappings.validation import validate_resource
from tests.fuzz.strategies import HOSTILE_STRINGS, bodies, json_values, resources

# PUENTE_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
EXAMPLES = int(os.environ.get("PUENTE_FUZZ_EXAMPLES", 300))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=bodies)
def test_any_body_parses_or_is_refused_with_an_outcome(body: bytes) -> None:
    try:
        value = parse_json(body, DEFAULT_LIMITS)
    except FhirError as exc:
        assert 400 <= exc.status < 500
        assert exc.outcome()["issue"]
        return
    try:
        validate_resource(value)
    except FhirError as exc:
        assert 400 <= exc.status < 500


@FUZZ
@given(resource=resources())
def test_any_resource_is_valid_or_refused(resource: dict[str, Any]) -> None:
    try:
        check_json(resource)
        validate_resource(resource)
    except FhirError as exc:
        assert 400 <= exc.status < 500


NAMES = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["subject", "patient", "organization", "partof", "name", "code", "identifier",
                              "_has:Observation:patient:code", "_has", ":", ":Patient", "general-practitioner"]),
             min_size=1, max_size=8).map(".".join),
)
VALUES = st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE_STRINGS),
                   st.integers(0, 400).map(lambda n: ",".join(["x"] * n)))


@FUZZ
@given(
    resource_type=st.sampled_from(["Patient", "Observation", "ServiceRequest", "Task", "Nope"]),
    pairs=st.lists(st.tuples(NAMES, VALUES), max_size=120),
)
def test_any_search_parses_or_is_refused(resource_type: str, pairs: list[tuple[str, str]]) -> None:
    try:
        parse_query(resource_type, pairs, base_url="http://example.org/fhir", max_count=100)
    except SearchError as exc:
        assert str(exc)
    except FhirError as exc:
        assert 400 <= exc.status < 500


@FUZZ
@given(query=st.text(max_size=300))
def test_any_query_string_parses_or_is_refused(query: str) -> None:
    try:
        parse_query("Patient", parse_qsl(query, keep_blank_values=True), base_url="http://example.org/fhir")
    except SearchError as exc:
        assert str(exc)
    except FhirError as exc:
        assert 400 <= exc.status < 500


OPERATIONS = st.lists(
    st.one_of(
        st.fixed_dictionaries({
            "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "nope"]),
            "path": st.sampled_from(["/name", "/name/-", "/name/0", "/active", "", "/", "/id", "/~1", "/name/99"]),
        }, optional={
            "from": st.sampled_from(["/name", "/name/0", "", "/x"]),
            "value": json_values,
        }),
        json_values,
    ),
    max_size=40,
)


@FUZZ
@given(operations=st.one_of(OPERATIONS, json_values))
def test_any_json_patch_applies_or_is_refused(operations: Any) -> None:
    document = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Quispe", "given": ["Rosa"]}]}
    try:
        apply(document, operations)
    except FhirError as exc:
        assert 400 <= exc.status < 500
