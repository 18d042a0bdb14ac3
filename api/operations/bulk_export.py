"""SMART Bulk Data Access v2: $export kick-off (system, Patient, Group), status, files, cancel.

Handlers only translate HTTP: jobs, the worker and the files are bulk/'s. A job belongs to the
client (or signed-in user) that started it: its status and files answer 404 to anyone else.
"""

from __future__ import annotations

import re
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from api import services
from api.dependencies import PrincipalDep, RepositoryDep, SettingsDep
from api.head import is_head
from api.media import response_media_type
from api.openapi_docs import fhir_responses
from api.rendering import json_response
from auth.principal import Principal
from bulk import jobs
from bulk.jobs import Job, owner_of
from bulk.request import GROUP, NDJSON, PATIENT, SYSTEM, parse_export
from bulk.runner import file_name, job_directory
from bulk.worker import ExportWorker
from fhir_mappings.outcomes import FhirError, Issue, MethodNotAllowed, NotFound

router = APIRouter(tags=["bulk data"])
OPERATIONS: list[dict[str, Any]] = [
    {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
        "type": None,
        "level": "system",
    },
    {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
        "type": "Patient",
        "level": "type",
    },
    {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
        "type": "Group",
        "level": "instance",
    },
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OperationOutcome answers of `fhir_responses`, without its success entry."""
    return {k: v for k, v in fhir_responses(200, "", *statuses).items() if k != 200}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": "string"}}


_KICK_OFF_DOC: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: poll the status URL in Content-Location",
        "headers": {"Content-Location": {"description": "The export's status URL", "schema": {"type": "string"}}},
    },
    **_errors(404),
}
_KICK_OFF_PARAMETERS = {
    "parameters": [
        {
            "name": "Prefer",
            "in": "header",
            "required": True,
            "description": "respond-async",
            "schema": {"type": "string"},
        },
        _query("_outputFormat", "application/fhir+ndjson (the default; also application/ndjson, ndjson)"),
        _query("_type", "Resource types to export, comma-separated (default: every type the token may read)"),
        _query("_since", "Only resources changed after this FHIR instant"),
        _query("_typeFilter", "A search such as Observation?code=http://loinc.org|718-7; repeat for OR"),
        _query("_elements", "Elements to keep (Type.element or element), comma-separated"),
    ]
}
_FILE = re.compile(r"^[A-Za-z]{1,64}\.ndjson$")
RETRY_AFTER_SECONDS = 2


class ExportFailed(FhirError):
    """The export job itself failed (SMART Bulk Data: a 5xx status answer with an OperationOutcome)."""

    status = 500
    issue_code = "exception"


def _worker(request: Request) -> ExportWorker:
    worker = services.of(request).export_worker
    if worker is None:
        raise RuntimeError("The export worker starts with the app")
    return worker


# What every kick-off route declares alike: 202 with no body, the kick-off's query parameters.
_KICK_OFF_ROUTE: dict[str, Any] = {
    "responses": _KICK_OFF_DOC,
    "status_code": 202,
    "response_class": Response,
    "openapi_extra": _KICK_OFF_PARAMETERS,
}


async def _kick_off(
    request: Request, principal: Principal, settings: Any, level: str, group_id: str | None = None
) -> Response:
    if is_head(request.scope):
        # HEAD must be safe (RFC 9110 §9.2.1), and this GET starts a job.
        raise MethodNotAllowed("HEAD would start an export: a kick-off is a GET with Prefer: respond-async")
    response_media_type(request)  # 406 for an Accept this server cannot answer
    export = parse_export(
        principal,
        level,
        request.query_params.multi_items(),
        request_url=str(request.url),
        prefer=request.headers.get("prefer"),
        group_id=group_id,
    )
    worker = _worker(request)
    job_id = await worker.store.create(principal, export)
    worker.wake()
    status_url = f"{settings.public_base_url}/$export-status/{job_id}"
    return Response(status_code=202, headers={"Content-Location": status_url})


@router.get(
    "/$export",
    operation_id="export_system",
    summary="Export every resource the caller may read (NDJSON)",
    **_KICK_OFF_ROUTE,
)
async def export_system(request: Request, principal: PrincipalDep, settings: SettingsDep) -> Response:
    return await _kick_off(request, principal, settings, SYSTEM)


@router.get(
    "/Patient/$export",
    operation_id="export_patients",
    summary="Export the records of every patient the caller may read",
    **_KICK_OFF_ROUTE,
)
async def export_patients(request: Request, principal: PrincipalDep, settings: SettingsDep) -> Response:
    return await _kick_off(request, principal, settings, PATIENT)


@router.get(
    "/Group/{group_id}/$export",
    operation_id="export_group",
    summary="Export the records of a Group's patients (a CHW's families, a sector's children)",
    **_KICK_OFF_ROUTE,
)
async def export_group(request: Request, group_id: str, repository: RepositoryDep, settings: SettingsDep) -> Response:
    await repository.read("Group", group_id)  # 404 / 410 for a Group the caller cannot read
    return await _kick_off(request, repository.principal, settings, GROUP, group_id)


async def _own_job(request: Request, principal: Principal, job_id: str) -> Job:
    job = await _worker(request).store.get(job_id)
    if job is None or job.status == jobs.CANCELLED or job.owner != owner_of(principal):
        raise NotFound(f"There is no export job {job_id} (it may have expired or been cancelled)")
    return job


@router.get(
    "/$export-status/{job_id}",
    operation_id="export_status",
    summary="The status of an export: 202 while it runs, then 200 with the manifest",
    responses={
        200: {
            "description": "Done: the manifest (output files, transactionTime, requiresAccessToken)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        202: {"description": "Still running (X-Progress, Retry-After)"},
        **_errors(404, 500),
    },
)
async def export_status(request: Request, job_id: str, principal: PrincipalDep, settings: SettingsDep) -> Response:
    job = await _own_job(request, principal, job_id)
    if job.status == jobs.FAILED:
        raise ExportFailed(
            job.error or "the export failed", issues=[Issue(job.error or "the export failed", "exception")]
        )
    if job.status != jobs.COMPLETED:
        done = sum(1 for t in job.request.types if job.progress.get(t, {}).get("done"))
        written = sum(int(state.get("count", 0)) for state in job.progress.values() if isinstance(state, dict))
        return Response(
            status_code=202,
            headers={
                "X-Progress": f"{job.status}: {done} of {len(job.request.types)} types, {written} resources",
                "Retry-After": str(RETRY_AFTER_SECONDS),
            },
        )
    headers = {"Expires": format_datetime(job.expires_at, usegmt=True)} if job.expires_at else {}
    return json_response(request, _manifest(job, settings.public_base_url), headers=headers)


def _manifest(job: Job, base_url: str) -> dict[str, Any]:
    assert job.transaction_time is not None
    output = [
        {
            "type": resource_type,
            "url": f"{base_url}/$export-file/{job.id}/{file_name(resource_type)}",
            "count": job.progress[resource_type]["count"],
        }
        for resource_type in job.request.types
        if job.progress.get(resource_type, {}).get("count")
    ]
    return {
        "transactionTime": job.transaction_time.isoformat().replace("+00:00", "Z"),
        "request": job.request.request_url,
        "requiresAccessToken": True,
        "output": output,
        "error": [],
    }


@router.delete(
    "/$export-status/{job_id}",
    operation_id="export_cancel",
    summary="Cancel an export, or remove a finished one's files",
    responses={202: {"description": "Cancelled"}, **_errors(404)},
    status_code=202,
    response_class=Response,
)
async def export_cancel(request: Request, job_id: str, principal: PrincipalDep) -> Response:
    await _own_job(request, principal, job_id)
    worker = _worker(request)
    await worker.store.cancel(job_id)
    worker.wake()  # the sweep removes its files
    return Response(status_code=202)


@router.get(
    "/$export-file/{job_id}/{name}",
    operation_id="export_file",
    summary="One NDJSON file of a finished export (the same access token as the kick-off)",
    responses={
        200: {"description": "NDJSON, one resource a line", "content": {NDJSON: {"schema": {"type": "string"}}}},
        **_errors(404),
    },
)
async def export_file(
    request: Request, job_id: str, name: str, principal: PrincipalDep, settings: SettingsDep
) -> Response:
    job = await _own_job(request, principal, job_id)
    path = job_directory(settings.export_directory, job_id) / name
    if job.status != jobs.COMPLETED or not _FILE.match(name) or not path.is_file():
        raise NotFound(f"Export {job_id} has no file {name}")
    return FileResponse(path, media_type=NDJSON, headers={"Cache-Control": "no-store"})
