"""/fhir/metadata is built once per app: the same bytes every time, an ETag, 304 for a client that has it."""

from __future__ import annotations


async def test_metadata_has_an_etag_and_answers_304(http):
    first = await http.get("/fhir/metadata")
    assert first.status_code == 200 and first.json()["resourceType"] == "CapabilityStatement"
    etag = first.headers["etag"]
    again = await http.get("/fhir/metadata")
    assert again.content == first.content and again.headers["etag"] == etag
    cached = await http.get("/fhir/metadata", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == etag
    stale = await http.get("/fhir/metadata", headers={"If-None-Match": 'W/"something-else"'})
    assert stale.status_code == 200


async def test_metadata_is_sent_gzipped_to_who_takes_it(http):
    zipped = await http.get("/fhir/metadata", headers={"Accept-Encoding": "gzip"})
    plain = await http.get("/fhir/metadata", headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json()
    assert zipped.num_bytes_downloaded * 10 < plain.num_bytes_downloaded


async def test_pretty_and_json_variants_still_work(http):
    pretty = await http.get("/fhir/metadata?_pretty=true")
    assert pretty.text.startswith('{\n  "resourceType"')
    as_json = await http.get("/fhir/metadata", headers={"Accept": "application/json"})
    assert as_json.headers["content-type"].startswith("application/json")
