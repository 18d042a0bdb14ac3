"""gzip both ways: smaller answers over rural mobile data, and compressed uploads as the Android SDK sends them."""

from __future__ import annotations

import gzip
import json

import pytest

from api import services
from tests.fixtures.builders import patient, weight


async def _visits(http, n: int) -> None:
    entries = []
    for i in range(n):
        entry = {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}", "resource": patient()}
        entries.append({**entry, "request": {"method": "POST", "url": "Patient"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    assert (await http.post("/fhir", json=bundle)).status_code == 200


async def test_a_searchset_is_gzipped_when_asked_and_reads_the_same(http):
    await _visits(http, 40)
    plain = await http.get("/fhir/Patient?_count=40", headers={"Accept-Encoding": "identity"})
    zipped = await http.get("/fhir/Patient?_count=40", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.json()["entry"] == plain.json()["entry"]  # httpx inflated it
    assert zipped.num_bytes_downloaded * 5 < plain.num_bytes_downloaded


async def test_a_small_answer_is_not_worth_compressing(http):
    r = await http.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in r.headers


async def test_a_gzip_upload_is_stored_as_sent(http):
    body = json.dumps(patient()).encode()
    r = await http.post("/fhir/Patient", content=gzip.compress(body),
                        headers={"Content-Type": "application/fhir+json", "Content-Encoding": "gzip"})
    assert r.status_code == 201, r.text
    assert r.json()["name"][0]["family"] == "Quispe Nuñez"


async def test_a_gzip_transaction_upload(http):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**weight("x"), "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = await http.post("/fhir", content=gzip.compress(json.dumps(bundle).encode()),
                        headers={"Content-Type": "application/fhir+json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["201", "201"]


async def test_a_zip_bomb_is_413_after_inflating_no_more_than_the_limit(http, edges_app):
    limit = services.of_app(edges_app).settings.max_body_bytes
    bomb = gzip.compress(b'{"resourceType":"Patient","x":"' + b" " * (limit * 3) + b'"}')
    assert len(bomb) < limit // 100  # small on the wire
    r = await http.post("/fhir/Patient", content=bomb,
                        headers={"Content-Type": "application/fhir+json", "Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("body", "encoding", "status"),
    [
        (b"not gzip at all", "gzip", 400),
        (gzip.compress(b'{"resourceType":"Patient"}')[:-6], "gzip", 400),  # cut short
        (gzip.compress(b'{"resourceType":"Patient"}') + b"junk", "gzip", 400),
        (b'{"resourceType":"Patient"}', "br", 415),
        (b'{"resourceType":"Patient"}', "gzip, br", 415),
    ],
)
async def test_bad_encodings_are_operation_outcomes(http, body, encoding, status):
    r = await http.post("/fhir/Patient", content=body,
                        headers={"Content-Type": "application/fhir+json", "Content-Encoding": encoding})
    assert r.status_code == status
    assert r.json()["resourceType"] == "OperationOutcome"


async def test_identity_encoding_is_no_encoding(http):
    r = await http.post("/fhir/Patient", content=json.dumps(patient()).encode(),
                        headers={"Content-Type": "application/fhir+json", "Content-Encoding": "identity"})
    assert r.status_code == 201
