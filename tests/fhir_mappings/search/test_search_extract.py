"""Index rows from realistic resources, per parameter type; fast paths agree with fhirpathpy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any

from fhir_mappings.search.dates import DATE_MAX, DateRange
from fhir_mappings.search.extract import extract_index_values
from fhir_mappings.search.rows import (
    CompositeRow,
    DateRow,
    IndexValue,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)

from . import resources as r
from .helpers import resource, utc

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"


def rows(text: str, **kwargs: Any) -> list[IndexValue]:
    return extract_index_values(resource(text), base_url=r.BASE, **kwargs)


def of(all_rows: Iterable[IndexValue], param: str) -> list[IndexValue]:
    return [row for row in all_rows if row.param == param]


# --- token -----------------------------------------------------------------------------------------


def test_identifier_rows_carry_type_codings_for_of_type() -> None:
    ids = of(rows(r.PATIENT), "identifier")
    text = "documento nacional de identidad"
    assert ids == [
        TokenRow(
            "identifier",
            "https://puente.example.org/id/dni",
            "71234567",
            text,
            "http://terminology.hl7.org/CodeSystem/v2-0203",
            "NI",
        ),
        TokenRow(
            "identifier",
            "https://puente.example.org/id/dni",
            "71234567",
            text,
            "https://puente.example.org/id-type",
            "DNI",
        ),
        TokenRow("identifier", "https://puente.example.org/id/chw-app", "a-19"),  # the duplicate is merged
    ]


def test_codes_booleans_and_bound_code_systems() -> None:
    patient = rows(r.PATIENT)
    assert of(patient, "gender") == [TokenRow("gender", "http://hl7.org/fhir/administrative-gender", "female")]
    assert of(patient, "active") == [TokenRow("active", None, "true")]
    assert of(patient, "deceased") == [TokenRow("deceased", None, "false")]  # the one fhirpathpy-only expression
    assert of(patient, "_id") == [TokenRow("_id", None, "p1")]


def test_codeable_concept_rows_per_coding_plus_text() -> None:
    code = of(rows(r.HEMOGLOBIN), "code")
    assert code == [
        TokenRow("code", LOINC, "30352-9", "hemoglobin [mass/volume] in capillary blood"),
        TokenRow("code", None, None, "hemoglobina"),
    ]
    assert of(rows(r.TASK), "business-status") == [TokenRow("business-status", None, None, "paciente llego")]


def test_contact_points_and_where_filters() -> None:
    patient = rows(r.PATIENT)
    assert of(patient, "phone") == [TokenRow("phone", "phone", "+51 944 123 456")]
    assert of(patient, "email") == [TokenRow("email", "email", "Maria@Example.pe")]
    assert len(of(patient, "telecom")) == 2


def test_meta_parameters() -> None:
    patient = rows(r.PATIENT)
    assert of(patient, "_tag") == [TokenRow("_tag", "https://puente.example.org/tags", "sector-7")]
    assert of(patient, "_security") == [
        TokenRow("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")
    ]
    assert of(patient, "_profile") == [
        UriRow("_profile", "https://puente.example.org/fhir/StructureDefinition/puente-child|1.0")
    ]
    assert of(patient, "_source") == [UriRow("_source", "urn:puente:chw-app")]
    assert of(patient, "_lastUpdated") == [
        DateRow("_lastUpdated", DateRange(utc(2024, 3, 1, 10, 15, 0, 123000), utc(2024, 3, 1, 10, 15, 0, 123999)))
    ]


# --- string ----------------------------------------------------------------------------------------


def test_strings_are_normalised_and_kept_as_written() -> None:
    patient = rows(r.PATIENT)
    assert of(patient, "family") == [StringRow("family", "nunez quispe", "Nuñez Quispe")]
    assert of(patient, "given") == [StringRow("given", "maria", "María"), StringRow("given", "jose", "José")]
    name = {(row.value, row.exact) for row in of(patient, "name") if isinstance(row, StringRow)}
    assert name == {
        ("maria jose nunez quispe", "María José Nuñez Quispe"),
        ("nunez quispe", "Nuñez Quispe"),
        ("maria", "María"),
        ("jose", "José"),
    }
    address = {row.value for row in of(patient, "address") if isinstance(row, StringRow)}
    assert address == {"mz. b lt. 12", "aa.hh. santa rosa", "la esperanza", "la libertad", "pe"}
    assert of(patient, "address-city") == [StringRow("address-city", "la esperanza", "La Esperanza")]


# --- date ------------------------------------------------------------------------------------------


def test_dates_at_their_precision() -> None:
    assert of(rows(r.PATIENT), "birthdate") == [
        DateRow("birthdate", DateRange(utc(2022, 5, 17), utc(2022, 5, 17, 23, 59, 59, 999999)))
    ]
    assert of(rows(r.HEMOGLOBIN), "date") == [
        DateRow("date", DateRange(utc(2024, 3, 1, 14, 40), utc(2024, 3, 1, 14, 40, 0, 999999)))
    ]


def test_dates_without_zone_use_the_server_zone() -> None:
    lima = timezone(timedelta(hours=-5))
    assert of(rows(r.PATIENT, tz=lima), "birthdate") == [
        DateRow("birthdate", DateRange(utc(2022, 5, 17, 5), utc(2022, 5, 18, 4, 59, 59, 999999)))
    ]


def test_periods_timings_and_unreadable_values() -> None:
    assert of(rows(r.BLOOD_PRESSURE), "date") == [
        DateRow("date", DateRange(utc(2024, 3, 2, 15), utc(2024, 3, 2, 15, 5, 0, 999999)))
    ]
    assert of(rows(r.REFERRAL), "occurrence") == [DateRow("occurrence", DateRange(utc(2024, 3, 4), DATE_MAX))]
    # Timing: only the outer limits of events and bounds count
    assert of(rows(r.PREGNANCY_STATUS), "date") == [
        DateRow("date", DateRange(utc(2024, 3, 2), utc(2024, 4, 2, 23, 59, 59, 999999)))
    ]
    # scheduledString "cada mes" is not a date: no row, no error
    assert of(rows(r.CARE_PLAN), "activity-date") == [
        DateRow("activity-date", DateRange(utc(2024, 2, 15), utc(2024, 5, 31, 23, 59, 59, 999999)))
    ]
    assert of(rows(r.MEDICATION_REQUEST), "date") == [
        DateRow("date", DateRange(utc(2024, 3, 1, 13), utc(2024, 3, 1, 13, 0, 0, 999999)))
    ]


# --- reference -------------------------------------------------------------------------------------


def test_reference_forms() -> None:
    referral = rows(r.REFERRAL)
    assert of(referral, "performer") == [
        ReferenceRow("performer", "Organization", "ipress-1234"),  # absolute on our base: local
        ReferenceRow("performer", "Organization", None, None, "https://other.example.org/fhir/Organization/99"),
    ]
    assert of(referral, "based-on") == [
        ReferenceRow("based-on", None, None, None, "urn:uuid:4f1c0a4e-6a6b-4b1f-9d1e-0a0b0c0d0e0f")
    ]
    assert of(referral, "patient") == [ReferenceRow("patient", "Patient", "p1")]
    task = rows(r.TASK)
    assert of(task, "focus") == [ReferenceRow("focus", "ServiceRequest", "sr1", "2")]
    assert of(task, "owner") == [
        ReferenceRow("owner", "Organization", None, None, None, "https://puente.example.org/id/ipress", "1234")
    ]
    assert of(rows(r.PATIENT), "general-practitioner") == [
        ReferenceRow("general-practitioner", "Practitioner", "chw-7")
    ]


def test_where_resolve_is_a_target_type_filter() -> None:
    device_subject = r.HEMOGLOBIN.replace('"Patient/p1"', '"Device/d1"')
    assert of(rows(device_subject), "subject") == [ReferenceRow("subject", "Device", "d1")]
    assert of(rows(device_subject), "patient") == []
    assert of(rows(r.HEMOGLOBIN), "patient") == [ReferenceRow("patient", "Patient", "p1")]


def test_contained_canonical_and_bundle_references() -> None:
    assert of(rows(r.MEDICATION_REQUEST), "medication") == []  # "#med1": contained, not searchable
    assert of(rows(r.QUESTIONNAIRE_RESPONSE), "questionnaire") == [
        # a canonical is an identity, not a location: kept as url (and version) even on our base
        ReferenceRow(
            "questionnaire", "Questionnaire", None, "2.1", "https://puente.example.org/fhir/Questionnaire/visit"
        )
    ]
    assert of(rows(r.DOCUMENT), "composition") == [ReferenceRow("composition", "Composition", "comp1")]
    assert of(rows(r.DOCUMENT), "identifier") == [
        TokenRow("identifier", "urn:ietf:rfc:3986", "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")
    ]


# --- quantity and number ---------------------------------------------------------------------------


def test_quantities_with_ucum_canonical_values() -> None:
    hb = of(rows(r.HEMOGLOBIN), "value-quantity")
    assert hb == [
        QuantityRow(
            "value-quantity",
            Decimal("10.50"),
            Decimal("10.50"),
            UCUM,
            "g/dL",
            "g/dL",
            "g/L",
            Decimal("105.00"),
            Decimal("105.00"),
        )
    ]
    condition = rows(r.CONDITION)
    onset = of(condition, "onset-age")
    assert onset == [
        QuantityRow(
            "onset-age",
            Decimal(22),
            Decimal(22),
            UCUM,
            "mo",
            "months",
            "s",
            Decimal(22 * 2629800),
            Decimal(22 * 2629800),
        )
    ]
    assert of(condition, "abatement-age") == [
        QuantityRow("abatement-age", Decimal(2), None, UCUM, "a", None, "s", Decimal(2 * 31557600), None)
    ]


def test_quantity_comparators_make_half_open_values() -> None:
    text = r.HEMOGLOBIN.replace('"value": 10.50,', '"value": 4, "comparator": "<",')
    assert of(rows(text), "value-quantity") == [
        QuantityRow("value-quantity", None, Decimal(4), UCUM, "g/dL", "g/dL", "g/L", None, Decimal(40))
    ]


def test_money_and_numbers() -> None:
    assert of(rows(r.INVOICE), "totalgross") == [
        QuantityRow("totalgross", Decimal("45.50"), Decimal("45.50"), "urn:iso:std:iso:4217", "PEN", None)
    ]
    assert of(rows(r.RISK), "probability") == [
        NumberRow("probability", Decimal("0.25"), Decimal("0.25")),
        NumberRow("probability", Decimal("0.1"), Decimal("0.3")),
    ]


# --- composite -------------------------------------------------------------------------------------


def test_composite_values_stay_within_their_component() -> None:
    bp = rows(r.BLOOD_PRESSURE)
    pairs = {
        (row.components[0].code, row.components[1].low)  # type: ignore[union-attr]
        for row in of(bp, "component-code-value-quantity")
        if isinstance(row, CompositeRow)
    }
    assert pairs == {("8480-6", Decimal(118)), ("8462-4", Decimal(76))}  # never 8480-6 with 76
    assert of(bp, "code-value-quantity") == []  # the panel itself has no value
    combo = {
        (row.components[0].code, row.components[1].low)  # type: ignore[union-attr]
        for row in of(bp, "combo-code-value-quantity")
        if isinstance(row, CompositeRow)
    }
    assert combo == pairs
    hb = of(rows(r.HEMOGLOBIN), "code-value-quantity")
    # the CodeableConcept.text row takes no part in a composite: only codes do
    assert hb == [
        CompositeRow(
            "code-value-quantity",
            (
                TokenRow("code", LOINC, "30352-9", "hemoglobin [mass/volume] in capillary blood"),
                QuantityRow(
                    "value-quantity",
                    Decimal("10.50"),
                    Decimal("10.50"),
                    UCUM,
                    "g/dL",
                    "g/dL",
                    "g/L",
                    Decimal("105.00"),
                    Decimal("105.00"),
                ),
            ),
        )
    ]
    concept = of(rows(r.PREGNANCY_STATUS), "code-value-concept")
    assert concept == [
        CompositeRow(
            "code-value-concept",
            (
                TokenRow("code", LOINC, "82810-3"),
                TokenRow("value-concept", LOINC, "LA15173-0", "pregnant"),
            ),
        )
    ]


# --- engines, robustness ---------------------------------------------------------------------------


def test_fast_paths_and_fhirpathpy_give_the_same_rows() -> None:
    for text in r.ALL:
        fast = rows(text)
        slow = rows(text, engine="fhirpath")
        assert set(fast) == set(slow), resource(text)["resourceType"]
        assert len(fast) == len(slow)


def test_rows_are_distinct() -> None:
    for text in r.ALL:
        found = rows(text)
        assert len(found) == len(set(found))


def test_odd_content_gives_no_row_and_no_error() -> None:
    odd: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "x",
        "code": "not-a-concept",
        "subject": {"display": "only a display"},
        "effectiveDateTime": "yesterday",
        "valueQuantity": {"value": "12", "code": "g"},
        "component": [None, 3, {"code": []}],
        "performer": ["Patient/1"],
        "category": [{"coding": "x"}],
        "identifier": [{"value": 12}],
        "meta": {"lastUpdated": 5, "tag": [{}]},
    }
    found = extract_index_values(odd)
    # invalid shapes are the validator's business; here they only must not break the write
    assert {row.param for row in found} <= {"_id", "code", "combo-code", "performer"}
    assert TokenRow("_id", None, "x") in found
    assert extract_index_values({"resourceType": "NotAType", "id": "1"}) == []
    assert extract_index_values({"id": "1"}) == []
