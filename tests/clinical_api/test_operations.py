"""The clinical operations over HTTP: $immds-forecast (POST), errors, CapabilityStatement and OpenAPI.

What reads stored measurements or Immunizations is in test_operations_search.py.
"""

from __future__ import annotations

import pytest

from fhir_mappings.validation import validate_resource
from tests.clinical_api.resources import FHIR_JSON, immunization, named, patient, put

CHILD = patient("kid", birth="2024-01-10")
STATUS = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
DUE, OVERDUE, EARLIEST = "30980-7", "59778-1", "30981-5"


def forecast_request(assessment: str | None, *resources: dict) -> dict:
    parameters = [] if assessment is None else [{"name": "assessmentDate", "valueDate": assessment}]
    for resource in resources:
        name = "patient" if resource["resourceType"] == "Patient" else "immunization"
        parameters.append({"name": name, "resource": resource})
    return {"resourceType": "Parameters", "parameter": parameters}


def by_series(body: dict) -> dict[str, dict]:
    recommendation = named(body, "recommendation")[0]["resource"]
    return {r["series"]: r for r in recommendation["recommendation"]}


def status_of(entry: dict) -> str | None:
    return next((c["code"] for c in entry["forecastStatus"]["coding"] if c["system"] == STATUS), None)


def criteria(entry: dict) -> dict[str, str]:
    return {c["code"]["coding"][0]["code"]: c["value"] for c in entry.get("dateCriterion") or ()}


async def forecast(client, body: dict) -> dict:
    r = await client.post("/fhir/$immds-forecast", json=body, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    result = r.json()
    validate_resource(result, expected_type="Parameters")  # and every resource inside it
    return result


async def test_forecast_on_time_child(client):
    doses = [immunization("bcg", "kid", "BCG", "2024-01-11"), immunization("hvb", "kid", "HVB", "2024-01-11")]
    body = await forecast(client, forecast_request("2024-03-15", CHILD, *doses))
    series = by_series(body)
    recommendation = named(body, "recommendation")[0]["resource"]
    assert recommendation["patient"] == {"reference": "Patient/kid"} and recommendation["date"] == "2024-03-15"
    bcg = series["BCG (tuberculosis)"]
    assert status_of(bcg) == "complete" and bcg["supportingImmunization"] == [{"reference": "Immunization/bcg"}]
    dtp = next(v for k, v in series.items() if k.startswith("Difteria"))
    assert status_of(dtp) == "due" and dtp["doseNumberPositiveInt"] == 1
    assert criteria(dtp)[DUE] == "2024-03-10" and criteria(dtp)[OVERDUE] == "2024-04-10"
    assert {c["code"] for c in dtp["vaccineCode"][0]["coding"]} == {"PENTA", "102"}
    evaluations = [p["resource"] for p in named(body, "evaluation")]
    assert {(e["immunizationEvent"]["reference"], e["doseStatus"]["coding"][0]["code"]) for e in evaluations} == {
        ("Immunization/bcg", "valid"), ("Immunization/hvb", "valid")}


async def test_forecast_not_yet_due_and_overdue(client):
    early = by_series(await forecast(client, forecast_request("2024-02-01", CHILD)))
    dtp = next(v for k, v in early.items() if k.startswith("Difteria"))
    assert dtp["forecastStatus"]["text"] == "not-yet-due" and status_of(dtp) is None
    late = by_series(await forecast(client, forecast_request("2024-06-01", CHILD)))
    dtp = next(v for k, v in late.items() if k.startswith("Difteria"))
    assert status_of(dtp) == "overdue"
    assert "catch-up" not in dtp["forecastReason"][0]["text"] and "overdue" in dtp["forecastReason"][0]["text"]
    assert criteria(dtp)[EARLIEST] == "2024-02-21"  # 6 weeks


async def test_late_dose_counts_and_does_not_count_what_was_not_given(client):
    doses = [
        immunization("p1", "kid", "PENTA", "2024-06-01"),  # late: counts, with a warning
        immunization("p2", "kid", "PENTA", "2024-07-01", status="not-done"),
        immunization("p3", "kid", "PENTA", "2024-07-02", isSubpotent=True),
    ]
    series = by_series(await forecast(client, forecast_request("2024-07-15", CHILD, *doses)))
    dtp = next(v for k, v in series.items() if k.startswith("Difteria"))
    assert dtp["doseNumberPositiveInt"] == 2
    assert dtp["supportingImmunization"] == [{"reference": "Immunization/p1"}]
    assert "late" in dtp["description"]


async def test_forecast_accepts_cvx_codes_and_defaults_to_today(client):
    bcg = immunization("bcg", "kid", "BCG", "2024-01-11")
    bcg["vaccineCode"] = {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "19"}]}
    body = await forecast(client, forecast_request(None, CHILD, bcg))
    assert status_of(by_series(body)["BCG (tuberculosis)"]) == "complete"


@pytest.mark.parametrize(("body", "status", "expression"), [
    (forecast_request("2024-03-15"), 400, "patient"),
    (forecast_request("2024-13-01", CHILD), 400, "parameter[0].valueDate"),  # caught by R4 validation
    (forecast_request("2024-03", CHILD), 400, "assessmentDate"),
    ({"resourceType": "Parameters", "parameter": [{"name": "patient", "resource": {"resourceType": "Observation",
      "status": "final", "code": {"text": "x"}}}]}, 400, "patient"),
    (patient("kid"), 400, None),
    (forecast_request("2024-03-15", CHILD, CHILD), 400, "patient"),
    (forecast_request("2024-03-15", patient("x", birth=None)), 400, None),  # birthDate null: invalid JSON
    (forecast_request("2023-03-15", CHILD), 422, None),
])
async def test_forecast_refuses_bad_requests(client, body, status, expression):
    r = await client.post("/fhir/$immds-forecast", json=body, headers=FHIR_JSON)
    assert r.status_code == status, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    if expression:
        assert expression in str(outcome["issue"][0].get("expression"))


async def test_forecast_without_birth_date_is_a_business_rule_failure(client):
    body = forecast_request("2024-03-15", {"resourceType": "Patient", "id": "x", "gender": "female"})
    r = await client.post("/fhir/$immds-forecast", json=body, headers=FHIR_JSON)
    assert r.status_code == 422 and "birthDate" in r.text


async def test_forecast_needs_json(client):
    r = await client.post("/fhir/$immds-forecast", content="<Parameters/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    r = await client.post("/fhir/$immds-forecast", content="{", headers=FHIR_JSON)
    assert r.status_code == 400


@pytest.mark.parametrize("operation", ["$nutrition-status", "$growth", "$immds-forecast"])
async def test_patient_operations_unknown_and_deleted_patient(client, operation):
    r = await client.get(f"/fhir/Patient/nobody/{operation}")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    await put(client, patient("gone"))
    await client.delete("/fhir/Patient/gone")
    assert (await client.get(f"/fhir/Patient/gone/{operation}")).status_code == 410


@pytest.mark.parametrize("query", ["$nutrition-status?date=2025-02-30", "$nutrition-status?date=yesterday",
                                   "$immds-forecast?assessmentDate=2025-1-1"])
async def test_patient_operations_refuse_bad_dates(client, query):
    await put(client, patient("kid"))
    r = await client.get(f"/fhir/Patient/kid/{query}")
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"][0] in ("date", "assessmentDate")


async def test_patient_without_measurements(client):
    await put(client, patient("kid"))
    r = await client.get("/fhir/Patient/kid/$nutrition-status")
    assert r.status_code == 200 and r.json() == {"resourceType": "Parameters"}
    growth = (await client.get("/fhir/Patient/kid/$growth")).json()
    assert [p["name"] for p in growth["parameter"]] == ["patient", "ruleset"]


async def test_capability_statement_lists_the_operations(client):
    rest = (await client.get("/fhir/metadata")).json()["rest"][0]
    patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert {op["name"] for op in patient_entry["operation"]} == {"nutrition-status", "growth", "immds-forecast",
                                                                 "export", "everything"}  # the last two: bulk data
    assert {"name": "immds-forecast",  # the programme's $worklist is listed beside it
            "definition": "http://hl7.org/fhir/us/immds/OperationDefinition/immds-forecast"} in rest["operation"]
    observation_entry = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert "operation" not in observation_entry


async def test_openapi_documents_the_operations_as_fhir(client):
    spec = (await client.get("/openapi.json")).json()
    for path, method in [("/fhir/Patient/{patient_id}/$nutrition-status", "get"),
                         ("/fhir/Patient/{patient_id}/$growth", "get"),
                         ("/fhir/Patient/{patient_id}/$immds-forecast", "get"),
                         ("/fhir/$immds-forecast", "post")]:
        operation = spec["paths"][path][method]
        assert operation["responses"]["200"]["content"]["application/fhir+json"]["schema"] == {
            "$ref": "#/components/schemas/Parameters"
        }
        assert operation["responses"]["400"] == {"$ref": "#/components/responses/400"}
        assert "OperationOutcome" in str(spec["components"]["responses"]["400"])
    assert "application/fhir+json" in spec["paths"]["/fhir/$immds-forecast"]["post"]["requestBody"]["content"]


async def test_operations_do_not_shadow_plain_interactions(client):
    await put(client, patient("kid"))
    assert (await client.get("/fhir/Patient/kid")).status_code == 200
    r = await client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    assert r.status_code == 201
    assert (await client.get("/fhir/Observation/x/$growth")).status_code == 404


