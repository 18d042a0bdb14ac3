"""Extraction over Synthea R4 resources: never crashes, and fast paths equal fhirpathpy."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fhir_mappings.search.extract import extract_index_values
from fhir_mappings.search.rows import CompositeRow, DateRow, ReferenceRow, TokenRow
from tests.fixtures.reference_data import synthea_resources


def test_every_synthea_resource_indexes_without_error() -> None:
    per_type: Counter[str] = Counter()
    for res in synthea_resources():
        found = extract_index_values(res)
        assert TokenRow("_id", None, res["id"]) in found
        per_type[res["resourceType"]] += len(found)
    assert len(per_type) == 16
    assert per_type["Observation"] > 1_500
    assert per_type["Patient"] > 0


def test_fast_paths_equal_fhirpathpy_on_every_synthea_resource() -> None:
    resources = synthea_resources()
    assert len({r["resourceType"] for r in resources}) >= 10
    for res in resources:
        fast = extract_index_values(res)
        slow = extract_index_values(res, engine="fhirpath")
        assert set(fast) == set(slow), (res["resourceType"], res["id"], set(fast) ^ set(slow))


def test_synthea_observation_rows_look_right() -> None:
    resources = synthea_resources()
    observation = next(r for r in resources if r["resourceType"] == "Observation" and "component" in r)
    found = extract_index_values(observation)
    subject = observation["subject"]["reference"]  # "urn:uuid:..." inside a transaction bundle
    assert ReferenceRow("subject", None, None, None, subject) in found
    assert any(isinstance(row, CompositeRow) and row.param == "component-code-value-quantity" for row in found)
    assert any(isinstance(row, DateRow) and row.param == "date" for row in found)


# --- arbitrary content never breaks a write --------------------------------------------------------

KEYS = [
    "id",
    "meta",
    "lastUpdated",
    "tag",
    "profile",
    "identifier",
    "system",
    "value",
    "type",
    "coding",
    "code",
    "display",
    "text",
    "name",
    "given",
    "family",
    "telecom",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "address",
    "city",
    "subject",
    "reference",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveTiming",
    "event",
    "repeat",
    "boundsPeriod",
    "start",
    "end",
    "valueQuantity",
    "valueRange",
    "low",
    "high",
    "comparator",
    "unit",
    "currency",
    "component",
    "valueCodeableConcept",
    "performer",
    "entry",
    "resource",
    "resourceType",
    "occurrenceDateTime",
    "status",
    "patient",
    "for",
    "focus",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.sampled_from(
        [
            "2024",
            "2024-03-01",
            "2024-03-01T10:00:00Z",
            "Patient/1",
            "#x",
            "phone",
            "g/dL",
            "http://unitsofmeasure.org",
            "http://loinc.org",
            "<",
            "urn:uuid:1",
            "Observation",
            "Nuñez",
        ]
    ),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    resource_type=st.sampled_from(["Patient", "Observation", "ServiceRequest", "Task", "Bundle", "Condition"]),
    body=st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8),
)
def test_arbitrary_content_never_raises(resource_type: str, body: dict[str, Any]) -> None:
    res = {**body, "resourceType": resource_type}
    for engine in ("fast", "fhirpath"):
        found = extract_index_values(res, engine=engine)  # type: ignore[arg-type]
        assert isinstance(found, list)


def _one_choice_each(value: Any) -> bool:
    """Valid FHIR has at most one `effective[x]` (etc.) per element; engines may differ otherwise."""
    if isinstance(value, list):
        return all(_one_choice_each(v) for v in value)
    if isinstance(value, dict):
        for prefix in ("effective", "deceased", "value", "occurrence"):
            if sum(1 for key in value if key.startswith(prefix)) > 1:
                return False
        return all(_one_choice_each(v) for v in value.values())
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    resource_type=st.sampled_from(["Patient", "Observation", "ServiceRequest", "Task", "Bundle", "Condition"]),
    body=st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8),
)
def test_engines_agree_on_arbitrary_content(resource_type: str, body: dict[str, Any]) -> None:
    res = {**body, "resourceType": resource_type}
    assume(_one_choice_each(res))
    assert set(extract_index_values(res)) == set(extract_index_values(res, engine="fhirpath"))
