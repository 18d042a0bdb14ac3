"""Hostile and broken input (issue 16): a clear 4xx naming the limit, fast, never a 500, and the
server keeps answering on the same connection afterwards. Every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event

from api import services
from tests.api.test_errors import assert_outcome, count
from tests.fixtures.builders import patient

FHIR = {"Content-Type": "application/fhir+json"}
PATCH = {"Content-Type": "application/json-patch+json"}
SECONDS = 20  # generous: these are correctness checks on a shared 2-core machine, not benchmarks


def refused(response, status: int, limit: str | None = None) -> dict:
    body = assert_outcome(response, status)
    if limit:
        assert limit in response.text, response.text
    return body


async def still_serving(client) -> None:
    """The same client (connection) is answered normally afterwards."""
    assert (await client.get("/healthz")).status_code == 200
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR)
    assert created.status_code == 201, created.text


def nested(levels: int) -> bytes:
    inner = b'{"url":"http://x","valueString":"a"}'
    return b'{"resourceType":"Patient","extension":' + b'[{"url":"http://x","extension":' * levels + b"[" + inner \
        + b"]" + b"}]" * levels + b"}"


@pytest.mark.parametrize("levels", [70, 1_000, 100_000])
async def test_deep_json_in_a_resource(client, levels):
    started = time.monotonic()
    refused(await client.post("/fhir/Patient", content=nested(levels), headers=FHIR), 400, "PUENTE_MAX_JSON_DEPTH")
    assert time.monotonic() - started < SECONDS
    assert await count(client, "Patient") == 0
    await still_serving(client)


async def test_deep_json_in_a_bundle(client):
    resource = nested(1_000).decode()
    bundle = '{"resourceType":"Bundle","type":"transaction","entry":[{"resource":' + resource + \
        ',"request":{"method":"POST","url":"Patient"}}]}'
    refused(await client.post("/fhir", content=bundle, headers=FHIR), 400, "PUENTE_MAX_JSON_DEPTH")
    await still_serving(client)


@pytest.mark.parametrize("text", ["\\ud800", "a\\udfffb", "\\u0000"])
async def test_unstorable_characters(client, text):
    body = '{"resourceType":"Patient","name":[{"family":"' + text + '"}]}'
    response = await client.post("/fhir/Patient", content=body, headers=FHIR)
    refused(response, 400)
    assert "Patient.name[0].family" in response.text
    for raw in ("%ED%A0%80", "%00", "%FF"):  # a surrogate as UTF-8 bytes, a NUL, not UTF-8 at all
        assert (await client.get(f"/fhir/Patient?family={raw}")).status_code in (200, 400)
    assert await count(client, "Patient") == 0
    await still_serving(client)


@pytest.mark.parametrize(
    ("value", "limit"),
    [
        ("1e999999999", "PUENTE_MAX_NUMBER_EXPONENT"),
        ("1e-999999999", "PUENTE_MAX_NUMBER_EXPONENT"),
        ("1." + "0" * 100_000, "PUENTE_MAX_NUMBER_DIGITS"),
        ("1" * 40, "PUENTE_MAX_NUMBER_DIGITS"),
    ],
)
async def test_numbers_the_indexes_cannot_hold(client, value, limit):
    """Refused alike on both databases (SQLite stored 1e999999999 as infinity; PostgreSQL failed)."""
    body = (
        '{"resourceType":"Observation","status":"final","code":{"text":"Hb"},'
        '"valueQuantity":{"value":' + value + ',"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}'
    )
    response = await client.post("/fhir/Observation", content=body, headers=FHIR)
    refused(response, 400, limit)
    assert "Observation.valueQuantity.value" in response.text
    assert await count(client, "Observation") == 0
    refused(await client.get("/fhir/Observation", params={"value-quantity": value[:5000]}), 400)
    await still_serving(client)


async def test_a_number_within_the_limits_is_kept_as_written(client):
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"Hb"},'
            '"valueQuantity":{"value":1.2345678901234567890123456789e50}}')
    created = await client.post("/fhir/Observation", content=body, headers=FHIR)
    assert created.status_code == 201, created.text
    assert created.json()["valueQuantity"]["value"] == pytest.approx(1.2345678901234567e50)


@pytest.mark.parametrize("field", ["name", "identifier"])
async def test_a_million_element_array(client, field):
    # 1,000,001 items in under the 10 MiB body limit
    body = b'{"resourceType":"Patient","' + field.encode() + b'":[' + b",".join([b"{}"] * 1_000_001) + b"]}"
    started = time.monotonic()
    response = await client.post("/fhir/Patient", content=body, headers=FHIR)
    refused(response, 400, "PUENTE_MAX_ARRAY_ITEMS")
    assert time.monotonic() - started < SECONDS
    assert await count(client, "Patient") == 0
    await still_serving(client)


async def test_a_body_over_the_size_limit(client):
    response = await client.post("/fhir/Patient", content=b"[" + b" " * (11 * 1024 * 1024) + b"]", headers=FHIR)
    refused(response, 413, "PUENTE_MAX_BODY_BYTES")
    await still_serving(client)


async def test_too_many_search_parameters(client):
    params = [("gender", "female")] * 1_500
    started = time.monotonic()
    refused(await client.get("/fhir/Patient", params=params), 400, "PUENTE_MAX_SEARCH_PARAMS")
    form = "&".join(f"name=n{i}" for i in range(50_000))
    response = await client.post(
        "/fhir/Patient/_search", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    refused(response, 400, "PUENTE_MAX_SEARCH_PARAMS")
    assert time.monotonic() - started < SECONDS
    await still_serving(client)


async def test_too_many_values_in_one_parameter(client):
    values = ",".join(f"v{i}" for i in range(5_000))
    refused(await client.get("/fhir/Patient", params={"identifier": values}), 400, "PUENTE_MAX_SEARCH_VALUES")


async def test_deep_chains_and_has(client):
    chain = "subject" + ".organization.partof" * 30 + ".name"
    started = time.monotonic()
    refused(await client.get("/fhir/Observation", params={chain: "x"}), 400, "PUENTE_MAX_CHAIN_DEPTH")
    has = "_has:Observation:patient:" * 10 + "code"
    refused(await client.get("/fhir/Patient", params={has: "x"}), 400, "PUENTE_MAX_HAS_DEPTH")
    assert time.monotonic() - started < SECONDS
    # within the limits both still work
    ok = await client.get("/fhir/Observation", params={"subject.organization.name": "x"})
    assert ok.status_code == 200, ok.text
    ok = await client.get("/fhir/Patient", params={"_has:Observation:patient:code": "x"})
    assert ok.status_code == 200, ok.text
    await still_serving(client)


async def test_conditional_criteria_over_the_limits(client):
    criteria = "&".join(f"identifier=x{i}" for i in range(500))
    response = await client.post("/fhir/Patient", json=patient(), headers={**FHIR, "If-None-Exist": criteria})
    refused(response, 400, "PUENTE_MAX_SEARCH_PARAMS")
    assert await count(client, "Patient") == 0


@pytest.mark.parametrize("version", ["¹", "٣", "99999999999999999999", "-1", "1.0"])
async def test_vread_of_versions_that_cannot_exist(client, version):
    created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR)).json()
    refused(await client.get(f"/fhir/Patient/{created['id']}/_history/{version}"), 404)
    await still_serving(client)


async def test_json_patch_operation_count(client):
    created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR)).json()
    operations = [{"op": "replace", "path": "/active", "value": True}] * 101
    response = await client.patch(f"/fhir/Patient/{created['id']}", json=operations, headers=PATCH)
    refused(response, 400, "PUENTE_MAX_PATCH_OPERATIONS")


async def test_json_patch_that_doubles_itself(client):
    created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR)).json()
    operations = [{"op": "copy", "from": "/name", "path": "/name/-"}] * 60
    started = time.monotonic()
    response = await client.patch(f"/fhir/Patient/{created['id']}", json=operations, headers=PATCH)
    refused(response, 400)
    assert time.monotonic() - started < SECONDS
    assert (await client.get(f"/fhir/Patient/{created['id']}")).json()["meta"]["versionId"] == "1"
    await still_serving(client)


async def test_post_without_content_type(client):
    response = await client.post("/fhir/Patient", content=b'{"resourceType":"Patient"}')
    refused(response, 415)
    assert await count(client, "Patient") == 0


@pytest.mark.parametrize("criteria", ["=", "", "identifier=", "_count=1", "&&"])
async def test_empty_conditional_criteria(client, criteria):
    await client.post("/fhir/Patient", json=patient(), headers=FHIR)
    response = await client.post("/fhir/Patient", json=patient(), headers={**FHIR, "If-None-Exist": criteria})
    if criteria == "":
        assert response.status_code == 201  # an empty header is no header
        return
    refused(response, 400)
    assert await count(client, "Patient") == 1


async def test_options_answers_with_every_method(client):
    response = await client.options("/fhir/Patient")
    assert response.status_code == 204
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE", "OPTIONS"} <= allow
    response = await client.options("/fhir/Patient/abc")
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "PUT", "PATCH", "DELETE"} <= allow and "POST" not in allow


async def test_405_names_every_allowed_method(client):
    response = await client.patch("/fhir/Patient", json=[], headers=PATCH)
    assert response.status_code == 405
    allow = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= allow


async def test_answers_with_patient_data_are_not_stored_by_caches(client):
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR)
    assert created.headers["cache-control"] == "no-store"
    read = await client.get(f"/fhir/Patient/{created.json()['id']}")
    assert read.headers["cache-control"] == "no-store"
    assert (await client.get("/fhir/Patient")).headers["cache-control"] == "no-store"
    assert (await client.get("/fhir/Patient/missing")).headers["cache-control"] == "no-store"
    assert "no-store" not in (await client.get("/fhir/metadata")).headers.get("cache-control", "")


async def test_refused_bodies_never_take_a_pooled_connection(client, app):
    """Parsing, the limits and the Content-Type check come before the request's transaction."""
    checkouts: list[object] = []

    def checked_out(*_: object) -> None:
        checkouts.append(1)

    created = (await client.post("/fhir/Patient", json=patient(), headers=FHIR)).json()
    event.listen(services.of_app(app).engine.sync_engine, "checkout", checked_out)
    try:
        refused(await client.post("/fhir/Patient", content=nested(1_000), headers=FHIR), 400)
        refused(await client.put(f"/fhir/Patient/{created['id']}", content=b'{"a":"\\ud800"}', headers=FHIR), 400)
        refused(await client.post("/fhir", content=b'{"resourceType":"Bundle","n":1e999999}', headers=FHIR), 400)
        refused(await client.post("/fhir/Patient", content=b"{}"), 415)
        operations = [{"op": "test", "path": "/id", "value": "x"}] * 101
        refused(await client.patch(f"/fhir/Patient/{created['id']}", json=operations, headers=PATCH), 400)
        refused(await client.post("/fhir/Patient", content=b"{not json", headers=FHIR), 400)
    finally:
        event.remove(services.of_app(app).engine.sync_engine, "checkout", checked_out)
    assert checkouts == []
