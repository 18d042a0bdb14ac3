"""Fuzz the HTTP API on both databases (issue 16): Hypothesis-made bodies, Bundles and query strings
through the real app and the Bundle processor. Never a 5xx; every 4xx is an OperationOutcome; the
server answers /healthz afterwards."""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE
from tests.fuzz.strategies import bodies, bundles, encode

# PUENTE_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
EXAMPLES = int(os.environ.get("PUENTE_FUZZ_EXAMPLES", 60))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FHIR = {"Content-Type": "application/fhir+json"}


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=60)


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome", response.text[:300]


@FUZZ
@given(bundle=bundles())
async def test_bundles(app, bundle):
    async with client_for(app) as client:
        check(await client.post("/fhir", content=encode(bundle), headers=FHIR))
        assert (await client.get("/healthz")).status_code == 200


@FUZZ
@given(body=bodies, path=st.sampled_from(["/fhir/Patient", "/fhir/Observation", "/fhir", "/fhir/Patient/fz-1"]),
       method=st.sampled_from(["POST", "PUT"]))
async def test_bodies(app, body, path, method):
    if method == "PUT" and path == "/fhir":
        method = "POST"
    async with client_for(app) as client:
        check(await client.request(method, path, content=body, headers=FHIR))


QUERY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(list("=&.:,|$%_")),
    max_size=200,
)


@FUZZ
@given(query=QUERY_TEXT, resource_type=st.sampled_from(["Patient", "Observation", "ServiceRequest", "Nope"]))
async def test_search_query_strings(app, query, resource_type):
    async with client_for(app) as client:
        check(await client.get(f"/fhir/{resource_type}?{quote(query, safe='=&')}"))
        form = quote(query, safe="=&").encode()
        check(await client.post(f"/fhir/{resource_type}/_search", content=form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"}))
