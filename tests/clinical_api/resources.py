"""Builders and small HTTP helpers for the clinical integration tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from fhir_mappings import fhir_json

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ANAEMIA = "https://puente.example.org/fhir/CodeSystem/anaemia-classification"
RESIDENCE = "https://puente.example.org/fhir/StructureDefinition/residence-location"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
HB, WEIGHT, LENGTH, HEIGHT, HEAD, MUAC = "718-7", "29463-7", "8306-3", "8302-2", "9843-4", "56072-2"
VACCINES = "https://puente.example.org/fhir/CodeSystem/pe-vacunas"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def patient(pid: str, *, birth: str = "2024-01-10", gender: str = "female", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth, **extra}


def observation(
    oid: str, pid: str, loinc: str, value: Any, unit: str, when: str = "2025-03-02", **extra: Any
) -> dict[str, Any]:
    category = "laboratory" if loinc == HB else "vital-signs"
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        # Strings become exact decimals, written as given ("10.40" stays 10.40).
        "valueQuantity": {"value": Decimal(value) if isinstance(value, str) else value, "unit": unit,
                          "system": UCUM, "code": unit},
        **extra,
    }


def hb(oid: str, pid: str, g_dl: Any, when: str = "2025-03-02", **extra: Any) -> dict[str, Any]:
    return observation(oid, pid, HB, g_dl, "g/dL", when, **extra)


def location(lid: str, altitude: Any | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Location", "id": lid, "name": lid, **extra}
    if altitude is not None:
        body["position"] = {"longitude": Decimal("-79.05"), "latitude": Decimal("-8.07"), "altitude": altitude}
    return body


def immunization(iid: str, pid: str, code: str, when: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": iid,
        "status": "completed",
        "vaccineCode": {"coding": [{"system": VACCINES, "code": code}]},
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": when,
        **extra,
    }


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", content=fhir_json.dumps(resource),
                         headers=FHIR_JSON)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any] | None:
    """The resource, or None when it is missing or deleted."""
    r = await client.get(f"/fhir/{path}")
    if r.status_code in (404, 410):
        return None
    assert r.status_code == 200, r.text
    return r.json()


def interpretation_codes(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for concept in resource.get("interpretation") or () for c in concept["coding"]]


def v3(resource: dict[str, Any]) -> str | None:
    return next((code for system, code in interpretation_codes(resource) if system == V3), None)


def evidence(flag: dict[str, Any]) -> list[str]:
    return [e["valueReference"]["reference"] for e in flag.get("extension") or () if e["url"] == FLAG_DETAIL]


def reasons(request: dict[str, Any]) -> list[str]:
    return [r["reference"] for r in request.get("reasonReference") or ()]


def parts(parameter: dict[str, Any], name: str) -> list[Any]:
    """Values of the parts called `name` of one Parameters parameter (a nested part: the part itself)."""
    found = []
    for part in parameter.get("part") or ():
        if part["name"] == name:
            found.append(part if "part" in part else next((v for k, v in part.items() if k.startswith("value")), None))
    return found


def part(parameter: dict[str, Any], name: str) -> Any:
    values = parts(parameter, name)
    return values[0] if values else None


def named(parameters: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in parameters.get("parameter") or () if p["name"] == name]
