"""Lenient and strict handling, malformed values (always a 400), POST _search, Bundle entries, capabilities."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.search.conftest import found_ids, search

RESOURCES = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "name": [{"family": "Quispe"}]},
    {"resourceType": "Patient", "id": "p2", "gender": "male", "name": [{"family": "Mamani"}]},
]
STRICT = {"Prefer": "handling=strict"}


def _modes(body):
    return [e["search"]["mode"] for e in body["entry"]]


async def test_lenient_ignores_what_it_cannot_apply_and_says_so(loaded):
    body = await search(loaded, "Patient?gender=female&foo=bar&name:in=x&_text=rosa")
    assert [e["resource"]["id"] for e in body["entry"] if e["search"]["mode"] == "match"] == ["p1"]
    self_link = next(link["url"] for link in body["link"] if link["relation"] == "self")
    assert self_link.endswith("/fhir/Patient?gender=female")
    assert _modes(body) == ["match", "outcome"]
    outcome = body["entry"][-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert {i["severity"] for i in outcome["issue"]} == {"warning"}
    said = " ".join(i["diagnostics"] for i in outcome["issue"])
    assert "foo=bar" in said and "name:in=x" in said and "_text=rosa" in said
    assert body["entry"][-1]["fullUrl"].startswith("urn:uuid:")
    lenient = await loaded.get("/fhir/Patient?foo=bar", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200 and _modes(lenient.json()) == ["match", "match", "outcome"]
    clean = await search(loaded, "Patient?gender=female")
    assert _modes(clean) == ["match"]  # nothing ignored, nothing to say


@pytest.mark.parametrize("query", ["foo=bar", "name:in=x", "_text=rosa", "subject.name=x", "_sort=foo"])
async def test_strict_refuses_what_it_cannot_apply(loaded, query):
    response = await loaded.get(f"/fhir/Patient?{query}", headers=STRICT)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    "query",
    [
        "birthdate=2024-13-01",
        "birthdate=xx2024",
        "birthdate=ge",
        "_lastUpdated=yesterday",
        "identifier=a|b|c",
        "general-practitioner=not a reference",
        "gender:missing=maybe",
        "_count=-1",
        "_count=many",
        "_total=all",
        "_summary=yes",
        "_include=Patient",
        "_count=1&_count=2",
        "name=a%00b",  # NUL fits no database column
        "identifier=%00",
    ],
)
async def test_malformed_values_are_400_even_when_lenient(loaded, query):
    response = await loaded.get(f"/fhir/Patient?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await loaded.get(f"/fhir/Patient?{query}", headers=STRICT)).status_code == 400


async def test_post_search_with_a_form_body(loaded):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await loaded.post("/fhir/Patient/_search", content="gender=male&_count=5", headers=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["resource"]["id"] for e in body["entry"]] == ["p2"]
    assert next(link["url"] for link in body["link"] if link["relation"] == "self").endswith(
        "/fhir/Patient?gender=male&_count=5"
    )
    # parameters in the URL and the body both count
    both = await loaded.post("/fhir/Patient/_search?gender=male", data={"name": "quispe"})
    assert both.status_code == 200 and not both.json().get("entry")
    wrong = await loaded.post("/fhir/Patient/_search", json={"gender": "male"})
    assert wrong.status_code == 415
    assert (await loaded.post("/fhir/Patient/_search")).status_code == 200  # no parameters: everything


async def test_search_inside_a_batch(loaded):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient?gender=female"}},
            {"request": {"method": "GET", "url": "Patient?birthdate=bad"}},
        ],
    }
    response = await loaded.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["resource"]["type"] == "searchset"
    assert [e["resource"]["id"] for e in first["resource"]["entry"]] == ["p1"]
    assert second["response"]["status"].startswith("400")


async def test_unknown_type_is_404(loaded):
    assert (await loaded.get("/fhir/Nothing?x=1")).status_code == 404


async def test_capabilities_list_every_search_parameter(loaded):
    statement = (await loaded.get("/fhir/metadata")).json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    params = {p["name"]: p for p in patient["searchParam"]}
    assert {"identifier", "name", "birthdate", "_id", "_lastUpdated", "_tag"} <= set(params)
    assert params["birthdate"]["type"] == "date"
    assert params["identifier"]["definition"] == "http://hl7.org/fhir/SearchParameter/Patient-identifier"
    assert params["name"]["documentation"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "name",
                    "birthdate",
                    "identifier",
                    "general-practitioner",
                    "_sort",
                    "_count",
                    "_include",
                    "gender:not",
                    "name:exact",
                    "_has:Observation:subject:code",
                    "organization.name",
                    "_lastUpdated",
                    "birthdate:missing",
                    "_cursor",
                    "x",
                ]
            ),
            st.text(alphabet="ab12-|:,$\\.%_eglt T/Z+\x00ñ", max_size=12),
        ),
        max_size=4,
    )
)
async def test_any_query_is_a_result_or_a_400(loaded, pairs):
    response = await loaded.get("/fhir/Patient", params=pairs)
    assert response.status_code in (200, 400), (pairs, response.text)


async def test_found_ids_helper_sanity(loaded):
    assert await found_ids(loaded, "Patient") == {"p1", "p2"}
