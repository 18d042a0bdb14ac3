"""The JSON Schema alone decides whether a resource is valid; the fhir.resources models only explain a
rejection. So the schema must reject everything the models reject: checked rule by rule, on every
Synthea resource, and on random mutations of real resources."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings.outcomes import Invalid
from fhir_mappings.validation import _model_problems, is_calendar_date, validate_resource
from tests.fixtures.reference_data import synthea_resources

OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-02-29T09:30:00-05:00",
    "valueQuantity": {"value": 11.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
}


def model_rejects(resource: dict[str, Any]) -> bool:
    kind = resource["resourceType"]
    return bool(list(_model_problems(resource, kind, kind)))


def rejection(resource: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    with pytest.raises(Invalid) as caught:
        validate_resource(resource)
    issue = caught.value.issues[0]
    return issue.diagnostics, issue.expression


def with_(**changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(OBSERVATION)
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


@pytest.mark.parametrize(
    ("resource", "expression", "words"),
    [
        (with_(effectiveDateTime="2023-02-29T09:30:00Z"), "Observation.effectiveDateTime", "calendar"),
        (
            with_(effectiveDateTime=None, effectivePeriod={"start": "2023-04-31"}),
            "Observation.effectivePeriod.start",
            "calendar",
        ),
        (with_(issued="2023-06-31T10:00:00Z"), "Observation.issued", "calendar"),
        (with_(valueString="11.2"), "Observation.value", "choice"),
        (
            with_(component=[{"code": {"text": "a"}, "valueInteger": 1, "valueBoolean": True}]),
            "Observation.component[0].value",
            "choice",
        ),
        (
            with_(extension=[{"url": "http://example.org/x", "valueString": "a", "valueInteger": 1}]),
            "Observation.extension[0]",
            "value",
        ),
        (
            with_(
                code={
                    "coding": [
                        {
                            "code": "x",
                            "extension": [{"url": "http://example.org/x", "valueCode": "a", "valueBoolean": True}],
                        }
                    ]
                }
            ),
            "Observation.code.coding[0].extension[0]",
            "value",
        ),
        (
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "input": [{"type": {"text": "t"}, "valueString": "a", "valueInteger": 1}],
            },
            "Task.input[0]",
            "value",
        ),
        (with_(status=None), "Observation.status", "required"),
        (with_(extension=[{"valueString": "x"}]), "Observation.extension[0].url", "required"),
        (with_(valueQuantity=None, valueInteger=1.5), "Observation.valueInteger", "integer"),
        (with_(valueQuantity=None, valueInteger=2**31), "Observation.valueInteger", "smaller"),
        (with_(category=[None]), "Observation.category[0]", "object"),
        (with_(code="718-7"), "Observation.code", "object"),
        (with_(text={"status": "generated", "div": 7}), "Observation.text.div", "string"),
    ],
)
def test_the_schema_rejects_what_the_model_rejects(resource, expression, words):
    diagnostics, expressions = rejection(resource)
    assert any(e.startswith(expression) for e in expressions), expressions  # a choice names one of its types
    assert words in diagnostics
    assert model_rejects(resource)


@pytest.mark.parametrize(
    "resource",
    [
        with_(status=None, _status={"extension": [{"url": "http://example.org/why", "valueString": "unknown"}]}),
        with_(valueQuantity=None, valueInteger=1.0),
        {
            "resourceType": "Patient",
            "name": [
                {
                    "given": [None, "Ana"],
                    "_given": [{"extension": [{"url": "http://example.org/x", "valueString": "y"}]}, None],
                }
            ],
        },
        {"resourceType": "Patient", "birthDate": "2024-02-29", "deceasedDateTime": "2030"},
    ],
)
def test_what_fhir_allows_passes_both(resource):
    assert validate_resource(resource) == resource["resourceType"]
    assert not model_rejects(resource)


@pytest.mark.parametrize(
    ("value", "real"),
    [
        ("2024", True),
        ("2024-02", True),
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2023-04-31T10:00:00Z", False),
        ("2023-12-31T23:59:60Z", True),
    ],
)
def test_calendar_dates(value, real):
    assert is_calendar_date(value) is real


def _corpus() -> list[dict[str, Any]]:
    """Up to 25 resources of each type found in the Synthea bundles."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in synthea_resources():
        kept = by_type.setdefault(resource["resourceType"], [])
        if len(kept) < 25:
            kept.append(resource)
    return [OBSERVATION, *(r for kept in by_type.values() for r in kept)]


def test_every_synthea_resource_is_valid_to_both():
    checked = 0
    for resource in synthea_resources():
        assert validate_resource(resource) == resource["resourceType"]
        assert not model_rejects(resource), resource["id"]
        checked += 1
    assert checked > 500


_ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    1.5,
    1.0,
    2**31,
    -(2**31) - 1,
    -1,
    0,
    True,
    "x",
    {},
    [],
    [None],
    [{}],
    {"x": 1},
    "1 2",
    "2023-02-29",
    "2021-04-31T10:00:00Z",
    "2020-01-01T10:00:00",
]
_CHOICE_VALUES: dict[str, Any] = {
    "valueString": "x",
    "valueBoolean": True,
    "valueInteger": 3,
    "valueQuantity": {"value": 1},
    "valueCodeableConcept": {"text": "x"},
    "effectiveDateTime": "2020-01-01",
    "effectivePeriod": {"start": "2020"},
    "deceasedBoolean": False,
    "onsetString": "x",
    "occurrenceString": "x",
    "multipleBirthBoolean": True,
    "medicationReference": {"reference": "Medication/1"},
    "timingDateTime": "2020",
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if path or key not in ("resourceType", "contained"):
            found.extend(_paths(child, (*path, key)))
    return found


def mutate(resource: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One change at a random place: a key removed, another type of a choice added, or an odd value."""
    changed = copy.deepcopy(resource)
    path = rng.choice(_paths(changed))
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    draw = rng.random()
    if draw < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    elif draw < 0.35 and isinstance(parent, dict):
        name = rng.choice(sorted(_CHOICE_VALUES))
        parent[name] = copy.deepcopy(_CHOICE_VALUES[name])
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(_ODD_VALUES))
    return changed


_CORPUS: list[dict[str, Any]] = []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0), rng=st.randoms(use_true_random=False))
def test_a_mutated_resource_the_schema_accepts_the_model_accepts_too(index, rng):
    if not _CORPUS:
        _CORPUS.extend(_corpus())
    resource = mutate(_CORPUS[index % len(_CORPUS)], rng)
    try:
        validate_resource(resource)
    except Invalid:
        return
    assert not model_rejects(resource), resource
