"""Every bad input is an OperationOutcome with the right status, and nothing is half-written."""

from __future__ import annotations

import pytest

from api.app import create_app
from tests.conftest import make_settings
from tests.fixtures.builders import patient

FHIR = {"Content-Type": "application/fhir+json"}


def assert_outcome(response, status: int, expression: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")
    if expression:
        expressions = [e for issue in body["issue"] for e in issue.get("expression", [])]
        assert expression in expressions, expressions
    return body


async def count(client, resource_type: str) -> int:
    return (await client.get(f"/fhir/{resource_type}/_history")).json()["total"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[1,2]",
        b'{"resourceType":"Patient","gender":NaN}',
        b'{"resourceType":"Patient","id":"a","id":"b"}',
    ],
)
async def test_malformed_json(client, body):
    assert_outcome(await client.post("/fhir/Patient", content=body, headers=FHIR), 400)


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({"resourceType": "Patient", "gender": "banana"}, "Patient.gender"),
        ({"resourceType": "Patient", "active": "true"}, "Patient.active"),
        ({"resourceType": "Patient", "favouriteColour": "blue"}, "Patient.favouriteColour"),
        ({"resourceType": "Patient", "birthDate": "2024-02-30"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "birthDate": "12/04/2023"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "name": [{"family": 7}]}, "Patient.name[0].family"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
        ({"resourceType": "Observation", "code": {"text": "Hb"}}, "Observation.status"),
        ({"resourceType": "Patient", "deceasedBoolean": False, "deceasedDateTime": "2020"}, None),
        ({"resourceType": "Patient", "multipleBirthInteger": 1.5}, "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "extension": [{"valueString": "x"}]}, "Patient.extension[0].url"),
        ({"resourceType": "Patient", "maritalStatus": "M"}, "Patient.maritalStatus"),
        ({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "nombre": "x"}]}, None),
    ],
)
async def test_invalid_resources_name_the_element(client, body, expression):
    before = await count(client, body["resourceType"])
    assert_outcome(await client.post(f"/fhir/{body['resourceType']}", json=body), 400, expression)
    assert await count(client, body["resourceType"]) == before


async def test_wrong_resource_type_for_url(client):
    assert_outcome(await client.post("/fhir/Observation", json=patient()), 400, "resourceType")


async def test_unknown_and_r5_types(client):
    assert_outcome(await client.get("/fhir/Banana/1"), 404)
    assert_outcome(await client.post("/fhir/SubscriptionTopic", json={"resourceType": "SubscriptionTopic"}), 404)
    assert_outcome(await client.post("/fhir/Patient", json={"resourceType": "ActorDefinition"}), 400)


async def test_missing_resource_and_route(client):
    assert_outcome(await client.get("/fhir/Patient/does-not-exist"), 404)
    assert_outcome(await client.get("/nowhere"), 404)


async def test_method_not_allowed(client):
    assert_outcome(await client.post("/fhir/Patient/123", json=patient()), 405)


async def test_unsupported_media_type(client):
    r = await client.post("/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"})
    assert_outcome(r, 415)


async def test_body_over_the_limit_is_413_and_writes_nothing(database_url):
    import httpx

    app = create_app(make_settings(database_url, max_body_bytes=2000))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            before = await count(client, "Patient")
            big = patient(name=[{"family": "x" * 5000}])
            assert_outcome(await client.post("/fhir/Patient", json=big), 413)
            assert await count(client, "Patient") == before


async def test_bad_history_parameters(client):
    assert_outcome(await client.get("/fhir/Patient/_history", params={"_since": "yesterday"}), 400)
    assert_outcome(await client.get("/fhir/Patient/_history", params={"_count": "-1"}), 400)
