"""Property: any query string gives a SearchQuery, a SearchError or LimitExceeded (a 400), never another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings.outcomes import LimitExceeded
from fhir_mappings.search.errors import SearchError
from fhir_mappings.search.query import parse_query
from fhir_mappings.search.query_ast import SearchQuery

CODES = [
    "code",
    "subject",
    "patient",
    "date",
    "value-quantity",
    "identifier",
    "name",
    "given",
    "gender",
    "birthdate",
    "_id",
    "_lastUpdated",
    "_tag",
    "_profile",
    "_source",
    "_security",
    "component-code-value-quantity",
    "code-value-quantity",
    "performer",
    "status",
    "probability",
    "url",
    "organization",
    "general-practitioner",
    "_has",
    "_sort",
    "_count",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_format",
    "_pretty",
    "_text",
    "near",
    "foo",
    "",
]
MODIFIERS = [
    "",
    ":missing",
    ":exact",
    ":contains",
    ":not",
    ":text",
    ":of-type",
    ":identifier",
    ":above",
    ":below",
    ":in",
    ":Patient",
    ":Observation",
    ":iterate",
    ":",
    "::",
]
TYPES = ["Observation", "Patient", "Organization", "AuditEvent", "Nope", ""]
FRAGMENTS = [
    "eq",
    "ne",
    "gt",
    "lt",
    "ge",
    "le",
    "sa",
    "eb",
    "ap",
    "xx",
    "2024",
    "-01",
    "-13",
    "T10:00",
    ":00",
    "Z",
    "+05:00",
    " 05:00",
    ".5",
    "1e2",
    "1e99999",
    "-",
    "|",
    "||",
    "$",
    ",",
    "\\",
    "\\,",
    "\\|",
    "\\$",
    "http://loinc.org",
    "718-7",
    "Patient/",
    "1",
    "/_history/2",
    "g/dL",
    "mm[Hg]",
    "[degF]",
    "true",
    "false",
    "*",
    "Observation:patient",
    ":Patient",
    "Nuñez",
    "\x00",
    "\u202e",
    "%",
    ".",
]

NAMES = st.one_of(
    st.builds(lambda c, m: c + m, st.sampled_from(CODES), st.sampled_from(MODIFIERS)),
    st.builds(
        lambda a, m1, b, m2: f"{a}{m1}.{b}{m2}",
        st.sampled_from(CODES),
        st.sampled_from(MODIFIERS),
        st.sampled_from(CODES),
        st.sampled_from(MODIFIERS),
    ),
    st.builds(
        lambda t, r, c: f"_has:{t}:{r}:{c}", st.sampled_from(TYPES), st.sampled_from(CODES), st.sampled_from(CODES)
    ),
    st.text(max_size=20),
)
VALUES = st.one_of(st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join), st.text(max_size=30))


@settings(max_examples=400, deadline=None)
@given(
    resource_type=st.sampled_from(["Observation", "Patient", "DiagnosticReport", "RiskAssessment", "ValueSet"]),
    pairs=st.lists(st.tuples(NAMES, VALUES), max_size=6),
)
def test_any_query_gives_a_query_or_a_search_error(resource_type: str, pairs: list[tuple[str, str]]) -> None:
    try:
        result = parse_query(resource_type, pairs, base_url="http://example.org/fhir", max_count=100)
    except (SearchError, LimitExceeded) as exc:  # both a 400
        assert str(exc)
        return
    assert isinstance(result, SearchQuery)
    assert len(result.accepted) + len(result.problems) <= len(pairs)
    assert result.count is None or 0 <= result.count <= 100
