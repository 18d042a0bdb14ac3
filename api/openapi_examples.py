"""Examples for the OpenAPI document, from the CHW programme (La Esperanza): what integrators post.

Each is a valid R4 resource (a test validates them with Puente's own validator, and the document's
linter checks them against the schemas). By type: (example name, summary, resource).
"""

from __future__ import annotations

from typing import Any

DNI = "https://puente.example.org/fhir/sid/pe-dni"
APP_IDS = "https://puente.example.org/fhir/sid/chw-app-"

CHILD: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": f"{APP_IDS}patient", "value": "dev-LE-017/child-0003"}],
    "name": [{"family": "Rodríguez", "given": ["Thiago"]}],
    "gender": "male",
    "birthDate": "2025-04-02",
    "address": [{"district": "La Esperanza", "city": "Trujillo", "country": "PE"}],
}
HEMOGLOBIN: dict[str, Any] = {
    "resourceType": "Observation",
    "identifier": [{"system": f"{APP_IDS}observation", "value": "dev-LE-017/obs-0093"}],
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
    ],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]
    },
    "subject": {"reference": "Patient/chw-child-0003"},
    "effectiveDateTime": "2026-11-24T09:45:00-05:00",
    "valueQuantity": {"value": 10.4, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
}
VACCINE: dict[str, Any] = {
    "resourceType": "Immunization",
    "status": "completed",
    "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "116", "display": "rotavirus"}]},
    "patient": {"reference": "Patient/chw-child-0003"},
    "occurrenceDateTime": "2026-11-24",
    "lotNumber": "RV-2026-118",
}
REFERRAL: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "status": "active",
    "intent": "order",
    "code": {"text": "Evaluación de anemia en el centro de salud"},
    "subject": {"reference": "Patient/chw-child-0003"},
    "requester": {"reference": "Practitioner/chw-1"},
    "performer": [{"reference": "Organization/cs-la-esperanza"}],
    "reasonReference": [{"reference": "Observation/chw-obs-0093"}],
    "authoredOn": "2026-11-24",
}
TASK: dict[str, Any] = {
    "resourceType": "Task",
    "status": "requested",
    "intent": "order",
    "focus": {"reference": "ServiceRequest/chw-referral-0012"},
    "for": {"reference": "Patient/chw-child-0003"},
    "owner": {"reference": "Organization/cs-la-esperanza"},
    "authoredOn": "2026-11-24T10:00:00-05:00",
}
HOUSEHOLD_VISIT: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:6a1f0c52-6f0e-4d38-9d38-0d1d6c1b2a02",
            "resource": CHILD,
            "request": {"method": "POST", "url": "Patient",
                        "ifNoneExist": f"identifier={APP_IDS}patient|dev-LE-017/child-0003"},
        },
        {
            "fullUrl": "urn:uuid:6a1f0c52-6f0e-4d38-9d38-0d1d6c1b2a04",
            "resource": {**HEMOGLOBIN, "subject": {"reference": "urn:uuid:6a1f0c52-6f0e-4d38-9d38-0d1d6c1b2a02"}},
            "request": {"method": "POST", "url": "Observation",
                        "ifNoneExist": f"identifier={APP_IDS}observation|dev-LE-017/obs-0093"},
        },
    ],
}
FORECAST_REQUEST: dict[str, Any] = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "assessmentDate", "valueDate": "2026-11-24"},
        {"name": "patient", "resource": {**CHILD, "id": "chw-child-0003"}},
    ],
}

REQUEST_EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "Patient": ("child", "A child registered by a CHW (no DNI yet)", CHILD),
    "Observation": ("hemoglobin", "A hemoglobin measured at a household visit", HEMOGLOBIN),
    "Immunization": ("rotavirus", "A vaccine dose given at the health post", VACCINE),
    "ServiceRequest": ("referral", "A referral to the health centre for anaemia", REFERRAL),
    "Task": ("referral-task", "The referral's task, owned by the clinic", TASK),
    "Bundle": ("household-visit", "A CHW's household visit as one transaction", HOUSEHOLD_VISIT),
}
