"""api.fhir_lane: the routes it serves directly answer exactly as FastAPI's own path would.

Two things could go wrong: the lane taking a request that FastAPI gives to another route (an
earlier, more specific one such as `/fhir/SearchParameter/{id}`), and an answer that differs from
the one FastAPI's dependency path gives. Both are checked on both databases, the second by running
the same requests with the lane in place and with it taken out of the app's routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

from api.fhir_lane import FhirLane
from tests.fixtures.builders import hemoglobin, patient

FHIR = {"Content-Type": "application/fhir+json"}
# What a template's parameters are filled with: resource types, ids and words that look like
# operations or the fixed paths, so that every kind of overlap between routes is tried.
_FILLERS = ("Patient", "Observation", "SearchParameter", "Measure", "Subscription", "Group", "p1",
            "$export", "$everything", "$status", "_history", "_search", "metadata", ".well-known")


def _lane(app: FastAPI) -> FhirLane:
    lane = app.router.routes[0]
    assert isinstance(lane, FhirLane)
    return lane


@contextmanager
def _without_lane(app: FastAPI) -> Iterator[None]:
    lane = _lane(app)
    app.router.routes.remove(lane)
    try:
        yield
    finally:
        app.router.routes.insert(0, lane)


def _paths(template: str) -> Iterator[str]:
    """The template with each parameter filled by every filler in turn (one at a time)."""
    names = re.findall(r"\{[^}]+\}", template)
    if not names:
        yield template
        return
    for filler in _FILLERS:
        yield re.sub(r"\{[^}]+\}", filler, template)
    if len(names) > 1:
        yield re.sub(r"\{[^}]+\}", "x1", template)


def _scope(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "app": app, "query_string": b"",
            "headers": []}


def _router_choice(app: FastAPI, scope: dict[str, Any]) -> str | None:
    """The route FastAPI's router picks (the first full match in the app's order), without the lane."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, FhirLane):
            continue
        match, _ = context.matches(dict(scope))
        if match == Match.FULL:
            return context.name
    return None


def test_the_lane_serves_the_interactions_clinics_and_phones_use_most(app: FastAPI):
    served = set(_lane(app).routes_served)
    assert {"read", "vread", "search", "create", "update", "patch", "delete", "transaction"} <= served
    # Routes taking anything outside its vocabulary (query parameters, forms) stay with FastAPI.
    assert "worklist_operation" not in served


def test_the_lane_takes_a_request_only_when_the_router_would_give_it_the_same_route(app: FastAPI):
    lane = _lane(app)
    served = set(lane.routes_served)
    tried = 0
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, FhirLane) or not context.path or not context.methods:
            continue
        for method in context.methods:
            for path in _paths(context.path):
                scope = _scope(app, method, path)
                expected = _router_choice(app, scope)
                match, child = lane.matches(dict(scope))
                tried += 1
                if match == Match.FULL:
                    assert child["route"].name == expected, (method, path)
                else:
                    assert expected not in served, (method, path, expected)
    assert tried > 300


async def _script(client: httpx.AsyncClient) -> list[tuple[int, Any]]:
    """The interactions a day brings, happy and unhappy; what a client sees of each answer."""
    seen: list[tuple[int, Any]] = []

    def keep(response: httpx.Response) -> httpx.Response:
        body = response.json() if response.content else None
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            body = [issue.get("code") for issue in body.get("issue", [])]
        elif isinstance(body, dict):
            body = body.get("resourceType"), body.get("total"), body.get("meta", {}).get("versionId")
        seen.append((response.status_code, body))
        return response

    created = keep(await client.post("/fhir/Patient", json=patient("40112233")))
    patient_id = created.json()["id"]
    etag = created.headers["etag"]
    keep(await client.get(f"/fhir/Patient/{patient_id}"))
    keep(await client.get(f"/fhir/Patient/{patient_id}", headers={"If-None-Match": etag}))
    keep(await client.get(f"/fhir/Patient/{patient_id}/_history/1"))
    keep(await client.get(f"/fhir/Patient/{patient_id}/_history/9"))
    keep(await client.post("/fhir/Observation", content=hemoglobin(patient_id), headers=FHIR))
    keep(await client.get("/fhir/Observation", params={"subject": f"Patient/{patient_id}"}))
    keep(await client.get("/fhir/Observation", params={"no-such-parameter": "x"},
                          headers={"Prefer": "handling=strict"}))
    updated = {**created.json(), "gender": "female"}
    keep(await client.put(f"/fhir/Patient/{patient_id}", json=updated, headers={"If-Match": etag}))
    keep(await client.put(f"/fhir/Patient/{patient_id}", json=updated, headers={"If-Match": etag}))  # stale: 412
    operations = json.dumps([{"op": "replace", "path": "/active", "value": False}])
    keep(await client.patch(f"/fhir/Patient/{patient_id}", content=operations,
                            headers={"Content-Type": "application/json-patch+json"}))
    keep(await client.post("/fhir/Patient", content=b"{not json", headers=FHIR))
    keep(await client.post("/fhir/Patient", json={"resourceType": "Observation"}))
    keep(await client.post("/fhir/NoSuchType", json={"resourceType": "NoSuchType"}))
    keep(await client.get("/fhir/Patient/unknown-id"))
    keep(await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient("40112244"), "request": {"method": "POST", "url": "Patient"}}]}))
    keep(await client.delete(f"/fhir/Patient/{patient_id}"))
    keep(await client.get(f"/fhir/Patient/{patient_id}"))
    keep(await client.get("/fhir/metadata"))
    return seen


async def test_the_same_requests_get_the_same_answers_with_or_without_the_lane(app: FastAPI, client):
    through_lane = await _script(client)
    with _without_lane(app):
        through_fastapi = await _script(client)
    assert through_lane == through_fastapi
    statuses = [status for status, _ in through_lane]
    assert statuses[:5] == [201, 200, 304, 200, 404]
    assert 412 in statuses and 410 in statuses and 400 in statuses


async def test_a_failed_write_through_the_lane_leaves_nothing_behind(app: FastAPI, client):
    before = (await client.get("/fhir/Patient", params={"_summary": "count"})).json()["total"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient("40115566"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "birthDate": "not a date"}, "request": {"method": "POST",
                                                                                       "url": "Patient"}}]}
    failed = await client.post("/fhir", json=bundle)
    assert failed.status_code == 400
    assert failed.json()["resourceType"] == "OperationOutcome"
    after = (await client.get("/fhir/Patient", params={"_summary": "count"})).json()["total"]
    assert after == before
