"""The query parser, table-driven from the examples of the FHIR R4 search specification (search.html)."""

from __future__ import annotations

from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from fhir_mappings.search.dates import DateRange
from fhir_mappings.search.errors import SearchError
from fhir_mappings.search.query import parse_query, split_escaped, unescape
from fhir_mappings.search.query_ast import (
    ChainLink,
    Clause,
    CompositeValue,
    DateValue,
    Include,
    MissingValue,
    NumberValue,
    OfTypeValue,
    QuantityValue,
    ReferenceValue,
    ReverseChain,
    SearchQuery,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
)

from .helpers import utc

BASE = "http://example.org/fhir"
UCUM = "http://unitsofmeasure.org"
D = Decimal


def query(resource_type: str, *pairs: tuple[str, str], **kwargs: object) -> SearchQuery:
    return parse_query(resource_type, list(pairs), base_url=BASE, **kwargs)  # type: ignore[arg-type]


def one(resource_type: str, name: str, value: str) -> Clause:
    q = query(resource_type, (name, value))
    assert not q.problems, q.problems
    (clause,) = q.clauses
    return clause


# --- values per parameter type (spec 3.1.1.4 onward) ----------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "name", "value", "modifier", "expected"),
    [
        # number (3.1.1.4.1): the precision of the value is its implied range
        ("RiskAssessment", "probability", "100", None, NumberValue("eq", D("100"), D("99.5"), D("100.5"))),
        ("RiskAssessment", "probability", "100.00", None, NumberValue("eq", D("100.00"), D("99.995"), D("100.005"))),
        # the spec's table says [95, 105) for 1e2; half a unit of the last digit gives [50, 150]
        ("RiskAssessment", "probability", "1e2", None, NumberValue("eq", D("1e2"), D("50"), D("150"))),
        ("RiskAssessment", "probability", "lt100", None, NumberValue("lt", D("100"), D("99.5"), D("100.5"))),
        ("RiskAssessment", "probability", "ge0.8", None, NumberValue("ge", D("0.8"), D("0.75"), D("0.85"))),
        ("RiskAssessment", "probability", "ap100", None, NumberValue("ap", D("100"), D("90.0"), D("110.0"))),
        # date (3.1.1.4.2)
        (
            "Patient",
            "birthdate",
            "eq2013-01-14",
            None,
            DateValue("eq", DateRange(utc(2013, 1, 14), utc(2013, 1, 14, 23, 59, 59, 999999))),
        ),
        (
            "Observation",
            "date",
            "ge2013-03-14",
            None,
            DateValue("ge", DateRange(utc(2013, 3, 14), utc(2013, 3, 14, 23, 59, 59, 999999))),
        ),
        (
            "Observation",
            "date",
            "le2010-03",
            None,
            DateValue("le", DateRange(utc(2010, 3, 1), utc(2010, 3, 31, 23, 59, 59, 999999))),
        ),
        (
            "Observation",
            "date",
            "sa2013",
            None,
            DateValue("sa", DateRange(utc(2013, 1, 1), utc(2013, 12, 31, 23, 59, 59, 999999))),
        ),
        (
            "Observation",
            "date",
            "gt2013-01-14T10:00:00Z",
            None,
            DateValue("gt", DateRange(utc(2013, 1, 14, 10), utc(2013, 1, 14, 10, 0, 0, 999999))),
        ),
        # '+' of a zone arrives as a space when the client did not percent-encode it
        (
            "Observation",
            "_lastUpdated",
            "gt2024-01-01T10:00:00 05:00",
            None,
            DateValue("gt", DateRange(utc(2024, 1, 1, 5), utc(2024, 1, 1, 5, 0, 0, 999999))),
        ),
        # string (3.1.1.4.3)
        ("Patient", "given", "eve", None, StringValue("eve", "eve")),
        ("Patient", "given", "Nuñez", "exact", StringValue("nunez", "Nuñez")),
        ("Patient", "given", "eve", "contains", StringValue("eve", "eve")),
        # uri (3.1.1.4.4)
        ("ValueSet", "url", "http://acme.org/fhir/ValueSet/123", None, UriValue("http://acme.org/fhir/ValueSet/123")),
        ("ValueSet", "url", "http://acme.org/fhir/", "below", UriValue("http://acme.org/fhir/")),
        # token (3.1.1.4.5)
        ("Patient", "identifier", "http://acme.org/patient|2345", None, TokenValue("http://acme.org/patient", "2345")),
        ("Patient", "gender", "male", None, TokenValue(None, "male")),
        ("Patient", "gender", "male", "not", TokenValue(None, "male")),
        (
            "Condition",
            "code",
            "http://acme.org/conditions/codes|ha125",
            None,
            TokenValue("http://acme.org/conditions/codes", "ha125"),
        ),
        ("Condition", "code", "|ha125", None, TokenValue("", "ha125")),
        ("Condition", "code", "http://snomed.info/sct|", None, TokenValue("http://snomed.info/sct", None)),
        ("Condition", "code", "headache", "text", TextValue("headache")),
        (
            "Patient",
            "identifier",
            "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
            "of-type",
            OfTypeValue("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "446053"),
        ),
        ("Patient", "active", "true", None, TokenValue(None, "true")),
        # quantity (3.1.1.4.6)
        (
            "Observation",
            "value-quantity",
            "5.4|http://unitsofmeasure.org|mg",
            None,
            QuantityValue(
                "eq", D("5.4"), D("5.35"), D("5.45"), UCUM, "mg", "g", D("0.0054"), D("0.00535"), D("0.00545")
            ),
        ),
        (
            "Observation",
            "value-quantity",
            "5.40e-3|http://unitsofmeasure.org|g",
            None,
            QuantityValue(
                "eq",
                D("5.40e-3"),
                D("0.005395"),
                D("0.005405"),
                UCUM,
                "g",
                "g",
                D("0.00540"),
                D("0.005395"),
                D("0.005405"),
            ),
        ),
        (
            "Observation",
            "value-quantity",
            "5.4||mg",
            None,
            QuantityValue(
                "eq", D("5.4"), D("5.35"), D("5.45"), None, "mg", "g", D("0.0054"), D("0.00535"), D("0.00545")
            ),
        ),
        (
            "Observation",
            "value-quantity",
            "le5.4|http://acme.org/units|mgx",
            None,
            QuantityValue("le", D("5.4"), D("5.35"), D("5.45"), "http://acme.org/units", "mgx"),
        ),
        ("Observation", "value-quantity", "5.4", None, QuantityValue("eq", D("5.4"), D("5.35"), D("5.45"), None, None)),
        # reference (3.1.1.4.7)
        ("Observation", "subject", "Patient/23", None, ReferenceValue("Patient", "23")),
        ("Observation", "subject", "23", None, ReferenceValue(None, "23")),
        ("Observation", "subject", f"{BASE}/Patient/23", None, ReferenceValue("Patient", "23")),
        ("Observation", "subject", f"{BASE}/Patient/23/_history/2", None, ReferenceValue("Patient", "23", "2")),
        (
            "Observation",
            "subject",
            "http://other.org/fhir/Patient/23",
            None,
            ReferenceValue("Patient", None, None, "http://other.org/fhir/Patient/23"),
        ),
        (
            "Observation",
            "subject",
            "http://acme.org/fhir/identifier/mrn|123456",
            "identifier",
            TokenValue("http://acme.org/fhir/identifier/mrn", "123456"),
        ),
        (
            "QuestionnaireResponse",
            "questionnaire",
            "http://acme.org/Questionnaire/q1|2.0",
            None,
            ReferenceValue("Questionnaire", None, "2.0", "http://acme.org/Questionnaire/q1"),
        ),
        # missing (3.1.1.5.1)
        ("Patient", "gender", "true", "missing", MissingValue(True)),
        ("Patient", "birthdate", "false", "missing", MissingValue(False)),
    ],
)
def test_values(resource_type: str, name: str, value: str, modifier: str | None, expected: object) -> None:
    clause = one(resource_type, f"{name}:{modifier}" if modifier else name, value)
    assert clause.code == name
    assert clause.modifier == modifier
    assert clause.values == (expected,)
    assert clause.resource_types == (resource_type,)
    assert clause.chain == ()


def test_type_modifier_is_folded_into_the_reference() -> None:
    clause = one("Observation", "subject:Patient", "23")
    assert clause.modifier is None
    assert clause.values == (ReferenceValue("Patient", "23"),)
    assert one("Observation", "subject:Patient", "Patient/23").values == (ReferenceValue("Patient", "23"),)
    with pytest.raises(SearchError):
        query("Observation", ("subject:Patient", "Group/23"))


def test_dates_without_zone_are_read_in_the_server_zone() -> None:
    lima = timezone(timedelta(hours=-5))
    clause = parse_query("Patient", [("birthdate", "2013-01-14")], tz=lima).clauses[0]
    assert clause.values == (DateValue("eq", DateRange(utc(2013, 1, 14, 5), utc(2013, 1, 15, 4, 59, 59, 999999))),)


def test_ucum_canonical_values_make_g_dl_match_g_l() -> None:
    (value,) = one("Observation", "value-quantity", "lt11.0|http://unitsofmeasure.org|g/dL").values
    assert isinstance(value, QuantityValue)
    assert (value.canonical_code, value.canonical_value) == ("g/L", D("110.0"))
    (value,) = one("Observation", "value-quantity", "98.6|http://unitsofmeasure.org|[degF]").values
    assert isinstance(value, QuantityValue) and value.canonical_code == "K"
    assert value.canonical_value is not None and abs(value.canonical_value - D("310.15")) < D("1e-9")


# --- OR, AND, escaping (3.1.1.3, 3.1.1.4.10) -------------------------------------------------------


def test_comma_is_or_and_repetition_is_and() -> None:
    q = query(
        "Observation",
        ("code", "http://loinc.org|718-7,http://loinc.org|30352-9"),
        ("date", "ge2024-01-01"),
        ("date", "lt2024-07-01"),
    )
    code, after, before = q.clauses
    assert code.values == (TokenValue("http://loinc.org", "718-7"), TokenValue("http://loinc.org", "30352-9"))
    assert [v.prefix for v in after.values + before.values] == ["ge", "lt"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (r"a\,b", (StringValue("a,b", "a,b"),)),
        (r"a\,b,c", (StringValue("a,b", "a,b"), StringValue("c", "c"))),
        (r"a\$b", (StringValue("a$b", "a$b"),)),
        (r"a\|b", (StringValue("a|b", "a|b"),)),
        ("a\\\\,b", (StringValue("a\\", "a\\"), StringValue("b", "b"))),
        (r"a\b", (StringValue("a\\b", "a\\b"),)),  # not an escape: kept
        ("a,,b,", (StringValue("a", "a"), StringValue("b", "b"))),  # empty items are ignored
    ],
)
def test_escaping(value: str, expected: tuple[StringValue, ...]) -> None:
    assert one("Patient", "name", value).values == expected


def test_escaped_token_separator() -> None:
    assert one("Patient", "identifier", r"http://a\|b|x\,y").values == (TokenValue("http://a|b", "x,y"),)
    assert split_escaped(r"a\|b|c", "|") == [r"a\|b", "c"]
    assert unescape(r"a\|b") == "a|b"


def test_empty_values_are_ignored() -> None:
    q = query("Patient", ("name", ""), ("gender", ","))
    assert q.clauses == () and q.problems == () and q.accepted == ()


# --- composite (3.1.1.4.8) -------------------------------------------------------------------------


def test_composite_values() -> None:
    clause = one("Observation", "component-code-value-quantity", "http://loinc.org|8480-6$lt60")
    assert clause.values == (
        CompositeValue(
            (
                TokenValue("http://loinc.org", "8480-6"),
                QuantityValue("lt", D("60"), D("59.5"), D("60.5"), None, None),
            )
        ),
    )
    clause = one("Group", "characteristic-value", "gender$mixed")
    assert clause.values == (CompositeValue((TokenValue(None, "gender"), TokenValue(None, "mixed"))),)
    with pytest.raises(SearchError):
        query("Observation", ("code-value-quantity", "http://loinc.org|718-7"))


# --- chains and reverse chains (3.1.1.4.11, 3.1.1.4.12) --------------------------------------------


def test_chains() -> None:
    clause = one("DiagnosticReport", "subject:Patient.name", "peter")
    assert clause.chain == (ChainLink("subject", ("Patient",)),)
    assert (clause.resource_types, clause.code, clause.values) == (
        ("Patient",),
        "name",
        (StringValue("peter", "peter"),),
    )
    # untyped: the targets that have the parameter
    clause = one("DiagnosticReport", "subject.name", "peter")
    assert clause.chain == (ChainLink("subject", ("Location", "Patient")),)
    # multi-level, ending in a composite
    clause = one("DiagnosticReport", "result.code-value-quantity", "http://loinc.org|2823-3$gt5.4|" + UCUM + "|mmol/L")
    assert clause.chain == (ChainLink("result", ("Observation",)),)
    clause = one("Observation", "subject:Patient.organization.name", "Posta La Esperanza")
    assert clause.chain == (ChainLink("subject", ("Patient",)), ChainLink("organization", ("Organization",)))
    assert clause.resource_types == ("Organization",)
    q = query("Patient", ("general-practitioner.name", "Joe"), ("general-practitioner.address-state", "MN"))
    assert [c.code for c in q.clauses] == ["name", "address-state"]
    # a chained parameter can take a modifier
    assert one("Observation", "subject:Patient.name:exact", "Peter").modifier == "exact"


def test_reverse_chains() -> None:
    clause = one("Patient", "_has:Observation:patient:code", "1234-5")
    assert clause.chain == (ReverseChain("Observation", "patient"),)
    assert (clause.resource_types, clause.code) == (("Observation",), "code")
    clause = one("Patient", "_has:Observation:patient:_has:AuditEvent:entity:agent", "MyUserId")
    assert clause.chain == (ReverseChain("Observation", "patient"), ReverseChain("AuditEvent", "entity"))
    assert clause.values == (ReferenceValue(None, "MyUserId"),)
    q = query("Patient", ("_has:Observation:performer:code", "x"))  # performer cannot point at a... Patient? it can
    assert q.clauses
    q = query("Patient", ("_has:Observation:nothing:code", "x"), ("_has:Observation:device:code", "x"))
    assert [p.kind for p in q.problems] == ["unknown-parameter", "unknown-parameter"]
    with pytest.raises(SearchError):
        query("Patient", ("_has:Observation", "x"))


# --- problems for the caller's lenient/strict choice, errors for malformed values ------------------


def test_unknown_and_unsupported_are_problems() -> None:
    q = query(
        "Observation",
        ("foo", "bar"),
        ("code:in", "http://x/vs"),
        ("code:below", "x"),
        ("_text", "x"),
        ("subject:Medication", "1"),
        ("subject.nothing", "1"),
        ("near", "1"),
        ("code", "ok"),
    )
    assert [(p.name, p.kind) for p in q.problems] == [
        ("foo", "unknown-parameter"),
        ("code:in", "unsupported-modifier"),
        ("code:below", "unsupported-modifier"),
        ("_text", "unsupported-parameter"),
        ("subject:Medication", "unsupported-modifier"),
        ("subject.nothing", "unknown-parameter"),
        ("near", "unsupported-parameter"),
    ]
    assert [c.code for c in q.clauses] == ["code"]
    assert q.accepted == (("code", "ok"),)  # what a lenient `self` link keeps


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("date", "2024-13-01"),
        ("date", "xx2024"),
        ("date", "ge"),
        ("date", "2024-01-01T10:00:00+25:00"),
        ("value-quantity", "abc"),
        ("value-quantity", "5|mg"),
        ("value-quantity", "5|a|b|c"),
        ("value-quantity", "1e99999"),
        ("code", "a|b|c"),
        ("code", "|"),
        ("subject", "not a reference"),
        ("subject", "Patient/"),
        ("code:missing", "yes"),
        ("_count", "-1"),
        ("_count", "ten"),
        ("_total", "all"),
        ("_summary", "yes"),
        ("_pretty", "1"),
        ("_elements", "a b"),
        ("_include", "Observation"),
        ("code-value-quantity", "a$b$c"),
    ],
)
def test_malformed_values_raise(name: str, value: str) -> None:
    with pytest.raises(SearchError) as info:
        query("Observation", (name, value))
    assert str(info.value)


def test_unknown_resource_type() -> None:
    with pytest.raises(SearchError):
        parse_query("Nope", [])


# --- result parameters (3.1.1.5.x) ------------------------------------------------------------------


def test_result_parameters() -> None:
    q = query(
        "Observation",
        ("_sort", "status,-date,category"),
        ("_count", "500"),
        ("_total", "accurate"),
        ("_summary", "count"),
        ("_elements", "identifier,status,subject"),
        ("_format", "application/fhir+json"),
        ("_pretty", "true"),
        max_count=100,
    )
    assert [(k.code, k.descending) for k in q.sort] == [("status", False), ("date", True), ("category", False)]
    assert q.count == 100  # clamped to the configured maximum
    assert (q.total, q.summary, q.format, q.pretty) == ("accurate", "count", "application/fhir+json", True)
    assert q.elements == ("identifier", "status", "subject")
    assert len(q.accepted) == 7
    with pytest.raises(SearchError):
        query("Observation", ("_count", "5"), ("_count", "6"))
    q = query("Observation", ("_sort", "-nothing"))
    assert q.sort == () and q.problems[0].kind == "unknown-parameter"


def test_includes() -> None:
    q = query(
        "MedicationRequest",
        ("_include", "MedicationRequest:patient"),
        ("_include", "MedicationRequest:requester:Practitioner"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_include", "*"),
        ("_include", "MedicationRequest:*"),
        ("_revinclude", "Provenance:target"),
        ("_revinclude:iterate", "Task:focus"),
    )
    assert q.includes == (
        Include("MedicationRequest", "patient", None, False),
        Include("MedicationRequest", "requester", "Practitioner", False),
        Include("Patient", "general-practitioner", None, True),
        Include(None, None, None, False),
        Include("MedicationRequest", None, None, False),
    )
    assert q.revincludes == (Include("Provenance", "target", None, False), Include("Task", "focus", None, True))
    q = query(
        "MedicationRequest",
        ("_include", "MedicationRequest:status"),
        ("_include", "Nope:x"),
        ("_include:deep", "MedicationRequest:patient"),
        ("_include", "MedicationRequest:patient:Device"),
    )
    assert [p.kind for p in q.problems] == [
        "unknown-parameter",
        "unknown-parameter",
        "unsupported-modifier",
        "unknown-parameter",
    ]


def test_reserved_parameters_pass_through() -> None:
    q = query("Patient", ("_cursor", "abc"), ("name", "x"), reserved={"_cursor"})
    assert q.passthrough == (("_cursor", "abc"),)
    assert q.accepted == (("name", "x"),)
