"""batch / transaction: POST /fhir with a Bundle (FHIR R4 http.html#transaction)."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from api.body import prevalidate, read_json
from api.bundle_processor import process_bundle
from api.dependencies import RepositoryDep, SettingsDep
from api.media import require_json_body
from api.openapi_docs import fhir_body, fhir_responses
from api.rendering import json_response, prefers_minimal
from api.search_service import search_bundle

router = APIRouter(tags=["batch/transaction"])


@router.post(
    "",
    operation_id="transaction",
    summary="Process a batch or transaction Bundle (transactions are all or nothing)",
    responses=fhir_responses(200, "batch-response or transaction-response Bundle", 404, 409, 412, 413, 415, 422),
    openapi_extra=fhir_body("A Bundle of type batch or transaction"),
)
async def transaction(request: Request, repository: RepositoryDep, settings: SettingsDep) -> Response:
    require_json_body(request)
    bundle = await read_json(request)
    await prevalidate(request, _entry_resources(bundle))
    response = await process_bundle(
        repository,
        bundle,
        base_url=settings.public_base_url,
        max_entries=settings.max_bundle_entries,
        search=functools.partial(search_bundle, settings=settings),
        minimal=prefers_minimal(request),
    )
    return json_response(request, response)


def _entry_resources(bundle: object) -> list[object]:
    """The resources a batch/transaction would validate (what its POST and PUT entries carry)."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list):
        return []
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
