"""batch / transaction: POST /fhir with a Bundle (FHIR R4 http.html#transaction)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from api.body import ResourceBody
from api.bundle_processor import process_bundle
from api.dependencies import RepositoryDep, SettingsDep
from api.openapi_docs import fhir_body, fhir_responses
from api.rendering import json_response, prefers_minimal
from api.search_service import search_bundle
from fhir_mappings.outcomes import TooLarge

router = APIRouter(tags=["batch/transaction"])


@router.post(
    "",
    operation_id="transaction",
    summary="Process a batch or transaction Bundle (transactions are all or nothing)",
    responses=fhir_responses(200, "batch-response or transaction-response Bundle", 404, 409, 412, 413, 415, 422),
    openapi_extra=fhir_body("A Bundle of type batch or transaction"),
)
async def transaction(
    request: Request, bundle: ResourceBody, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if isinstance(entries, list) and len(entries) > settings.max_bundle_entries:
        limit = settings.max_bundle_entries
        raise TooLarge(f"The Bundle has {len(entries)} entries; the limit is {limit} (PUENTE_MAX_BUNDLE_ENTRIES)")
    response = await process_bundle(
        repository,
        bundle,
        base_url=settings.public_base_url,
        max_entries=settings.max_bundle_entries,
        search=functools.partial(search_bundle, settings=settings),
        minimal=prefers_minimal(request),
    )
    return json_response(request, response)

