"""Helpers: seed a small programme, run an export to the end as a bulk client does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from fhir_mappings import fhir_json
from tests.auth.support import bearer

KICK_OFF = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


async def post(http: httpx.AsyncClient, token: str, resource: dict[str, Any]) -> str:
    r = await http.post(f"/fhir/{resource['resourceType']}", json=resource, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def put(http: httpx.AsyncClient, token: str, resource: dict[str, Any]) -> None:
    r = await http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=bearer(token))
    assert r.status_code in (200, 201), r.text


def observation(patient: str, code: str = "718-7", value: float = 11.2) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
    }


def referral(patient: str, clinic: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "Anaemia: evaluation at the health centre"},
        "subject": {"reference": f"Patient/{patient}"},
        "performer": [{"reference": f"Organization/{clinic}"}],
    }


async def seed(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Two clinics, three patients (two referred, one to each clinic), their Observations, a Group."""
    for clinic in ("clinic-a", "clinic-b"):
        await put(http, token, {"resourceType": "Organization", "id": clinic, "name": clinic})
    patients = [await post(http, token, {"resourceType": "Patient", "gender": g}) for g in ("female", "male", "female")]
    observations = [await post(http, token, observation(p)) for p in patients]
    observations.append(await post(http, token, observation(patients[0], "8302-2", 71.5)))
    referrals = {
        "clinic-a": await post(http, token, referral(patients[0], "clinic-a")),
        "clinic-b": await post(http, token, referral(patients[1], "clinic-b")),
    }
    group = await post(
        http,
        token,
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "name": "Familias de la CHW Rosa",
            "member": [
                {"entity": {"reference": f"Patient/{patients[1]}"}},
                {"entity": {"reference": f"Patient/{patients[2]}"}},
            ],
        },
    )
    return {"patients": patients, "observations": observations, "referrals": referrals, "group": group}


async def kick_off(http: httpx.AsyncClient, token: str, path: str, **params: str) -> str:
    r = await http.get(path, params=params, headers={**KICK_OFF, **bearer(token)})
    assert r.status_code == 202, r.text
    location = r.headers["content-location"]
    assert location.startswith("https://puente.test/fhir/$export-status/")
    return location.removeprefix("https://puente.test")


async def wait(http: httpx.AsyncClient, token: str, status_url: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        r = await http.get(status_url, headers=bearer(token))
        if r.status_code != 202:
            return r
        assert "x-progress" in r.headers and int(r.headers["retry-after"]) > 0
        assert time.monotonic() < deadline, "the export did not finish"
        await asyncio.sleep(0.05)


async def download(http: httpx.AsyncClient, token: str, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:
        r = await http.get(
            item["url"].removeprefix("https://puente.test"),
            headers={"Accept": "application/fhir+ndjson", **bearer(token)},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [fhir_json.loads(line) for line in r.text.splitlines()]
        assert len(lines) == item["count"]
        files.setdefault(item["type"], []).extend(lines)
    return files


async def export(http: httpx.AsyncClient, token: str, path: str = "/fhir/$export", **params: str) -> dict[str, Any]:
    status = await wait(http, token, await kick_off(http, token, path, **params))
    assert status.status_code == 200, status.text
    manifest: dict[str, Any] = status.json()
    return {"manifest": manifest, "files": await download(http, token, manifest)}


def ids(files: dict[str, list[dict[str, Any]]], resource_type: str) -> set[str]:
    return {r["id"] for r in files.get(resource_type, [])}
