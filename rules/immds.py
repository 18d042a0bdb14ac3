"""$immds-forecast (HL7 Immunization Decision Support Forecast IG): Parameters in, Parameters out.

In: `assessmentDate` (date, default today), `patient` (a Patient resource) and `immunization`
(Immunization resources, 0..*). Out: one `recommendation` (an ImmunizationRecommendation with a
recommendation per antigen series: its next dose, forecastStatus and dateCriterion) and one
`evaluation` (ImmunizationEvaluation) per dose judged. Only doses given count: status `completed`,
not `isSubpotent`, with a full occurrenceDateTime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clinical import (
    AdministeredDose,
    DoseStatus,
    Forecast,
    Recommendation,
    codes,
    forecast_immunizations,
    forecast_pregnancy_immunizations,
    load_schedule,
)
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import BusinessRule, Invalid, Issue
from fhir_mappings.validation import validate_resource
from rules.fhir_in import Resource, birth_date, codings, parse_date, reference_id, sex
from rules.lookup import patient_resources
from rules.pregnancy import find_pregnancy
from storage.repository import FhirRepository

_FULL_DATE = 10


@dataclass(frozen=True)
class ForecastRequest:
    assessment_date: dt.date
    patient: Resource
    immunizations: list[Resource]


def parse_date_parameter(name: str, value: str | None) -> dt.date | None:
    """A FHIR date (YYYY-MM-DD) from a query or Parameters value; 400 when it is not one."""
    if value is None:
        return None
    parsed = parse_date(value)
    if parsed is None or len(value) != _FULL_DATE:
        raise Invalid(f"{name}={value!r} is not a date (YYYY-MM-DD)",
                      issues=[Issue(f"{name} must be a full date such as 2026-03-02", "invalid", expression=(name,))])
    return parsed


def parse_forecast_request(body: Any, today: dt.date) -> ForecastRequest:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise Invalid("$immds-forecast takes a Parameters resource")
    validate_resource(body, expected_type="Parameters")
    assessment: dt.date | None = None
    patients: list[Resource] = []
    immunizations: list[Resource] = []
    for parameter in body.get("parameter") or ():
        name = parameter.get("name")
        if name == "assessmentDate":
            raw = parameter.get("valueDate") or parameter.get("valueDateTime")
            if assessment is not None or not isinstance(raw, str):
                issue = Issue("assessmentDate: one valueDate", "invalid", expression=("assessmentDate",))
                raise Invalid("assessmentDate must be given once, as valueDate", issues=[issue])
            assessment = parse_date_parameter("assessmentDate", raw[:_FULL_DATE])
        elif name == "patient":
            patients.append(_resource(parameter, "Patient"))
        elif name == "immunization":
            immunizations.append(_resource(parameter, "Immunization"))
    if len(patients) != 1:
        raise Invalid("$immds-forecast needs exactly one `patient` parameter (a Patient resource)",
                      issues=[Issue("one patient parameter is required", "required", expression=("patient",))])
    return ForecastRequest(assessment or today, patients[0], immunizations)


def _resource(parameter: Resource, resource_type: str) -> Resource:
    resource = parameter.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        name = str(parameter.get("name"))
        raise Invalid(f"parameter `{name}` must carry a {resource_type} resource",
                      issues=[Issue(f"{name}: a {resource_type} resource is required", "invalid", expression=(name,))])
    return resource


def administered_doses(immunizations: Iterable[Resource]) -> list[AdministeredDose]:
    doses = []
    for immunization in immunizations:
        if immunization.get("status") != "completed" or immunization.get("isSubpotent") is True:
            continue
        when = immunization.get("occurrenceDateTime")
        given = parse_date(when)
        coding = _vaccine_coding(immunization.get("vaccineCode"))
        if given is None or coding is None:
            continue
        system = coding.get("system")
        doses.append(AdministeredDose(
            vaccine_code=str(coding.get("code")), date=given,
            system=None if system == codes.PE_VACCINE_SYSTEM else system, id=immunization.get("id"),
        ))
    return doses


def _vaccine_coding(concept: Any) -> Resource | None:
    found = [c for c in codings(concept) if isinstance(c.get("code"), str)]
    for system in (codes.PE_VACCINE_SYSTEM, codes.CVX):
        for coding in found:
            if coding.get("system") == system:
                return coding
    return found[0] if found else None


def forecast_child(patient: Resource, assessment: dt.date, doses: list[AdministeredDose]) -> Forecast:
    born = birth_date(patient)
    if born is None:
        raise BusinessRule("The patient has no full birthDate: the schedule is by age",
                           issues=[Issue("Patient.birthDate is required", "business-rule",
                                         expression=("Patient.birthDate",))])
    if assessment < born:
        raise BusinessRule(f"assessmentDate {assessment.isoformat()} is before the birth date {born.isoformat()}")
    return forecast_immunizations(birth_date=born, assessment_date=assessment, doses=doses)


def forecast_parameters(patient: Resource, assessment: dt.date, forecasts: Iterable[Forecast]) -> dict[str, Any]:
    patient_ref = ({"reference": f"Patient/{patient['id']}"} if patient.get("id")
                   else {"display": "the patient given in the request"})
    recommendations: list[Resource] = []
    evaluations: list[Resource] = []
    for forecast in forecasts:
        schedule = load_schedule(forecast.schedule)
        series = {s.id: s for s in schedule.series}
        recommendations.extend(_recommendation(r, series[r.series_id], schedule) for r in forecast.recommendations)
        for evaluation in forecast.evaluations:
            s = series[evaluation.series_id]
            dose = evaluation.dose
            event = ({"reference": f"Immunization/{dose.id}"} if dose.id
                     else {"display": f"{dose.vaccine_code} on {dose.date.isoformat()}"})
            valid = evaluation.status is DoseStatus.VALID
            resource: Resource = {
                "resourceType": "ImmunizationEvaluation",
                "status": "completed",
                "patient": patient_ref,
                "date": assessment.isoformat(),
                "targetDisease": {"text": s.display},
                "immunizationEvent": event,
                "doseStatus": {"coding": [{"system": codes.IMMUNIZATION_EVALUATION_DOSE_STATUS,
                                           "code": "valid" if valid else "notvalid",
                                           "display": "Valid" if valid else "Not valid"}],
                               "text": evaluation.status.value},
                "series": s.display,
                "seriesDosesPositiveInt": len(s.doses),
            }
            if evaluation.reasons:
                resource["doseStatusReason"] = [{"text": reason} for reason in evaluation.reasons]
            if evaluation.dose_number is not None:
                resource["doseNumberPositiveInt"] = evaluation.dose_number
            evaluations.append(resource)
    recommendation: Resource = {
        "resourceType": "ImmunizationRecommendation",
        "patient": patient_ref,
        "date": assessment.isoformat(),
        "recommendation": recommendations,
    }
    parameters = [{"name": "recommendation", "resource": recommendation}]
    parameters.extend({"name": "evaluation", "resource": e} for e in evaluations)
    return {"resourceType": "Parameters", "parameter": parameters}


def _recommendation(r: Recommendation, series: Any, schedule: Any) -> Resource:
    vaccines = r.vaccines or tuple(schedule.vaccines[code] for code in series.doses[-1].vaccines)
    entry: Resource = {
        "vaccineCode": [
            {"coding": [{"system": c.system, "code": c.code, **({"display": c.display} if c.display else {})}
                        for c in v.codings], "text": v.display}
            for v in vaccines
        ],
        "targetDisease": {"text": r.series_display},
        "forecastStatus": {
            "coding": [{"system": c.system, "code": c.code, "display": c.display} for c in r.forecast_status],
            "text": r.status.value,
        },
        "series": r.series_display,
        "seriesDosesPositiveInt": r.series_doses,
    }
    if r.date_criteria:
        entry["dateCriterion"] = [
            {"code": {"coding": [{"system": c.system, "code": c.code, "display": c.display}]}, "value": d.isoformat()}
            for c, d in r.date_criteria
        ]
    if r.dose_number is not None:
        entry["doseNumberPositiveInt"] = r.dose_number
    if r.dose_label:
        entry["description"] = r.dose_label
    catch_up = [w.message for w in r.warnings if w.code == "catch-up"]
    if catch_up:
        entry["forecastReason"] = [{"text": message} for message in catch_up]
    others = [w.message for w in r.warnings if w.code != "catch-up"]
    if others:
        entry["description"] = "; ".join(([r.dose_label] if r.dose_label else []) + others)
    supporting = [{"reference": f"Immunization/{d.id}"} for d in r.supporting_doses if d.id]
    if supporting:
        entry["supportingImmunization"] = supporting
    return entry


async def stored_forecast(
    repository: FhirRepository, context: FhirRepository, patient_id: str, assessment: dt.date
) -> dict[str, Any]:
    """The forecast over the patient's stored Immunizations; for a pregnant woman with a dated
    pregnancy record, the pregnancy series too. `context` reads the pregnancy records."""
    patient = fhir_json.loads_stored((await repository.read("Patient", patient_id)).content or "{}")
    stored = await patient_resources(repository, "Immunization", patient_id, reference_param="patient")
    doses = administered_doses(i for i in stored if reference_id(i.get("patient"), "Patient") == patient_id)
    forecasts = [forecast_child(patient, assessment, doses)]
    if sex(patient) == "female":
        pregnancy = await find_pregnancy(context, patient_id, assessment)
        if pregnancy.gestational_days is not None:
            start = assessment - dt.timedelta(days=pregnancy.gestational_days)
            forecasts.append(forecast_pregnancy_immunizations(
                assessment_date=assessment, doses=doses, pregnancy_start=start))
    return forecast_parameters(patient, assessment, forecasts)
