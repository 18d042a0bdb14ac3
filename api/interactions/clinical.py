"""The clinical $operations over HTTP (the rules themselves are in `rules/`). Registered before the
generic /{type}/{id} routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api import services
from api.body import read_json
from api.dependencies import RepositoryDep
from api.media import require_json_body
from api.openapi_docs import fhir_body, fhir_responses
from api.rendering import json_response
from clinical import codes
from rules import immds, nutrition
from rules.system import rules_repository

router = APIRouter(tags=["clinical operations"])

OPERATIONS: list[dict[str, Any]] = [
    {"name": "nutrition-status", "definition": f"{codes.OPERATION_DEFINITION_BASE}/Patient-nutrition-status",
     "type": "Patient", "level": "instance"},
    {"name": "growth", "definition": f"{codes.OPERATION_DEFINITION_BASE}/Patient-growth",
     "type": "Patient", "level": "instance"},
    {"name": "immds-forecast", "definition": f"{codes.OPERATION_DEFINITION_BASE}/Patient-immds-forecast",
     "type": "Patient", "level": "instance"},
    {"name": "immds-forecast", "definition": codes.IMMDS_FORECAST_OPERATION, "type": None, "level": "system"},
]




def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@router.get(
    "/Patient/{patient_id}/$nutrition-status",
    operation_id="patient_nutrition_status",
    summary="Anaemia (WHO-2024) and growth (WHO z-scores) from the patient's latest measurements",
    description="Returns Parameters: one `anemia` part (latest hemoglobin) and one `growth` part per indicator "
    "(wfa, lhfa, wflh, bfa, hcfa, acfa) from the latest measurements on or before `date`.",
    responses=fhir_responses(200, "Parameters", 404, 410),
)
async def nutrition_status(
    request: Request,
    patient_id: str,
    repository: RepositoryDep,
    date: Annotated[str | None, Query(description="Status as of this date (YYYY-MM-DD); default: all data")] = None,
) -> Response:
    on = immds.parse_date_parameter("date", date)
    body = await nutrition.nutrition_status(
        repository, rules_repository(repository), patient_id, on, services.of(request).clinical.default_altitude_m)
    return json_response(request, body)


@router.get(
    "/Patient/{patient_id}/$growth",
    operation_id="patient_growth",
    summary="Every anthropometric measurement of the patient with its WHO z-scores (growth-chart data)",
    responses=fhir_responses(200, "Parameters", 404, 410),
)
async def growth(request: Request, patient_id: str, repository: RepositoryDep) -> Response:
    return json_response(request, await nutrition.growth_history(repository, patient_id))


@router.get(
    "/Patient/{patient_id}/$immds-forecast",
    operation_id="patient_immds_forecast",
    summary="Immunization forecast (Peru NTS 196-2022) over the patient's stored Immunizations",
    responses=fhir_responses(200, "Parameters: recommendation and evaluations", 404, 410, 422),
)
async def patient_immds_forecast(
    request: Request,
    patient_id: str,
    repository: RepositoryDep,
    assessment_date: Annotated[
        str | None, Query(alias="assessmentDate", description="YYYY-MM-DD; default: today (UTC)")
    ] = None,
) -> Response:
    on = immds.parse_date_parameter("assessmentDate", assessment_date) or _today()
    body = await immds.stored_forecast(repository, rules_repository(repository), patient_id, on)
    return json_response(request, body)


@router.post(
    "/$immds-forecast",
    operation_id="immds_forecast",
    summary="Immunization forecast (HL7 ImmDS IG) for the patient and immunizations in the Parameters",
    responses=fhir_responses(200, "Parameters: recommendation and evaluations", 413, 415, 422),
    openapi_extra=fhir_body("Parameters with assessmentDate, patient (Patient) and immunization (Immunization) 0..*"),
)
async def immds_forecast(request: Request) -> Response:
    require_json_body(request)
    forecast_request = immds.parse_forecast_request(await read_json(request), _today())
    doses = immds.administered_doses(forecast_request.immunizations)
    forecast = immds.forecast_child(forecast_request.patient, forecast_request.assessment_date, doses)
    body = immds.forecast_parameters(forecast_request.patient, forecast_request.assessment_date, [forecast])
    return json_response(request, body)
