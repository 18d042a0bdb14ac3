"""Patient/$everything (FHIR R4 patient-operation-everything): a patient's record, paged.

`[base]/Patient/{id}/$everything` for anyone who may read that patient; `[base]/Patient/$everything`
(every patient) for administrators only. `_since`, `_type` and `_count` as in the specification;
the `next` link carries a keyset cursor.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.bundles import bundle, page_url, raw
from api.dependencies import RepositoryDep, SettingsDep
from api.interactions.history import instant_param, page_size
from api.openapi_docs import fhir_responses
from api.rendering import json_response
from bulk.everything import Cursor, everything_page, record_types
from bulk.reader import visible_patients
from fhir_mappings.outcomes import Forbidden
from settings import Settings
from storage.repository import FhirRepository

router = APIRouter(tags=["bulk data"])
OPERATIONS: list[dict[str, Any]] = [
    {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        "type": "Patient",
        "level": "instance",
    },
]
_DOC = fhir_responses(200, "A searchset Bundle: the Patient, then its compartment type by type", 404, 410)


@router.get(
    "/Patient/{patient_id}/$everything",
    operation_id="everything_patient",
    summary="A patient's whole record",
    responses=_DOC,
)
async def everything_patient(
    request: Request, patient_id: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    await repository.read("Patient", patient_id)  # 404 / 410 for a patient the caller cannot read
    return await _everything(request, repository, settings, [patient_id])


@router.get(
    "/Patient/$everything",
    operation_id="everything_patients",
    summary="Every patient's whole record (administrators)",
    responses=_DOC,
)
async def everything_patients(request: Request, repository: RepositoryDep, settings: SettingsDep) -> Response:
    if not repository.principal.is_admin:
        raise Forbidden("Patient/$everything over every patient is for administrators; ask for one patient's")
    return await _everything(request, repository, settings, None)


async def _everything(
    request: Request, repository: FhirRepository, settings: Settings, patient_ids: list[str] | None
) -> Response:
    params = request.query_params
    types = record_types(repository.principal, [t.strip() for t in params.get("_type", "").split(",") if t.strip()])
    patients = patient_ids if patient_ids is not None else visible_patients(repository.principal)
    found, next_cursor = await everything_page(
        repository.connection,
        repository.principal,
        patients,
        types,
        since=instant_param(params.get("_since"), "_since"),
        count=page_size(params.get("_count"), settings),
        cursor=Cursor.decode(params.get("_cursor")),
    )
    base = settings.public_base_url
    links = [("self", page_url(request, base))]
    if next_cursor is not None:
        links.append(("next", page_url(request, base, _cursor=next_cursor.encode())))
    entries = [
        {"fullUrl": f"{base}/{resource_type}/{row.id}", "resource": raw(row.content), "search": {"mode": "match"}}
        for resource_type, row in found
    ]
    return json_response(request, bundle("searchset", entries, links, None))
