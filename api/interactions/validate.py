"""$validate (FHIR R4 resource-operation-validate.html): would this resource be accepted?

`POST [type]/$validate` and `POST [type]/[id]/$validate` take the resource itself or a Parameters
with `resource`, `mode` (create | update | delete) and `profile`; `mode` and `profile` may also come
in the query. Nothing is stored. The answer is 200 with an OperationOutcome whether or not the
resource is valid (the operation worked; its result is the outcome); a request the operation cannot
run on (malformed JSON, an unknown mode or profile, a type R4 does not have) is a 4xx.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.body import read_json
from api.dependencies import PrincipalDep, RepositoryDep
from api.media import require_json_body
from api.openapi_docs import fhir_body, fhir_responses
from api.rendering import json_response
from fhir_mappings.outcomes import Forbidden, Gone, Invalid, Issue, NotFound, operation_outcome
from fhir_mappings.validation import check_resource_type, validate_resource

router = APIRouter(tags=["validate"])
MODES = ("create", "update", "delete")
BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
_DOC: dict[str, Any] = {
    "responses": fhir_responses(200, "An OperationOutcome: the resource's problems, or none", 404, 413, 415),
    "openapi_extra": fhir_body("The resource, or a Parameters with resource, mode and profile"),
}


@router.post(
    "/{resource_type}/$validate",
    operation_id="validate",
    summary="Validate a resource without storing it ($validate)",
    **_DOC,
)
async def validate(request: Request, resource_type: str, principal: PrincipalDep) -> Response:
    check_resource_type(resource_type)
    resource, mode = await _arguments(request, resource_type)
    if mode == "delete":
        raise Invalid("mode=delete validates the deletion of one resource: POST [type]/[id]/$validate")
    _require(principal.allows(resource_type, "u" if mode == "update" else "c"), resource_type)
    return json_response(request, operation_outcome(_check(resource, resource_type, mode, None)))


@router.post(
    "/{resource_type}/{resource_id}/$validate",
    operation_id="validate_instance",
    summary="Validate an update or deletion of a resource without doing it ($validate)",
    **_DOC,
)
async def validate_instance(
    request: Request, resource_type: str, resource_id: str, repository: RepositoryDep
) -> Response:
    check_resource_type(resource_type)
    resource, mode = await _arguments(request, resource_type, body_required=False)
    mode = mode or "update"
    if mode == "delete":
        _require(repository.principal.allows(resource_type, "d"), resource_type)
        try:
            await repository.read(resource_type, resource_id)  # the caller's access rules apply
        except (NotFound, Gone) as exc:
            return json_response(request, operation_outcome(exc.issues))
        return json_response(request, operation_outcome([_fine(mode)]))
    _require(repository.principal.allows(resource_type, "u" if mode == "update" else "c"), resource_type)
    if resource is None:
        raise Invalid(f"mode={mode} needs the resource to validate, as the body or a `resource` parameter")
    return json_response(request, operation_outcome(_check(resource, resource_type, mode, resource_id)))


async def _arguments(
    request: Request, resource_type: str, *, body_required: bool = True
) -> tuple[Any, str | None]:
    """(resource, mode) from the body (a resource or Parameters) and the query; the profile is checked."""
    mode = request.query_params.get("mode")
    profile = request.query_params.get("profile")
    resource: Any = None
    has_body = request.headers.get("content-length") not in (None, "0") or "transfer-encoding" in request.headers
    if body_required or has_body:
        require_json_body(request)
        body = await read_json(request)
        if isinstance(body, dict) and body.get("resourceType") == "Parameters" and resource_type != "Parameters":
            resource, mode, profile = _from_parameters(body, mode, profile)
        else:
            resource = body
    if mode is not None and mode not in MODES:
        raise Invalid(f"mode={mode} is not one of {', '.join(MODES)}", issues=[Issue(f"Unknown mode {mode}", "value")])
    if profile is not None and profile.split("|")[0] != BASE_PROFILE + resource_type:
        raise Invalid(
            f"Profile {profile} is not known here: resources are validated against the base R4 {resource_type}",
            issues=[Issue(f"Profile {profile} is not supported", "not-supported")],
        )
    return resource, mode


def _from_parameters(body: dict[str, Any], mode: str | None, profile: str | None) -> tuple[Any, str | None, str | None]:
    validate_resource(body, expected_type="Parameters")
    resource: Any = None
    for parameter in body.get("parameter", []):
        name = parameter.get("name")
        if name == "resource":
            resource = parameter.get("resource")
        elif name == "mode":
            mode = parameter.get("valueCode", mode)
        elif name == "profile":
            profile = parameter.get("valueUri", parameter.get("valueCanonical", profile))
    return resource, mode, profile


def _check(resource: Any, resource_type: str, mode: str | None, resource_id: str | None) -> list[Issue]:
    """The problems a create or update of `resource` would meet, as issues (none: one information issue)."""
    try:
        validate_resource(resource, expected_type=resource_type)
    except Invalid as exc:
        return exc.issues
    if mode == "update":
        given = resource.get("id")
        if given is None:
            return [Issue("An update must carry the resource's id", "required", expression=(f"{resource_type}.id",))]
        if resource_id is not None and given != resource_id:
            message = f"The body's id '{given}' does not match the URL's id '{resource_id}'"
            return [Issue(message, "invalid", expression=(f"{resource_type}.id",))]
    return [_fine(mode)]


def _fine(mode: str | None) -> Issue:
    return Issue(f"No issues found{f' for {mode}' if mode else ''}", "informational", "information")


def _require(allowed: bool, resource_type: str) -> None:
    if not allowed:
        raise Forbidden(f"The token's scopes do not allow writing {resource_type}, so there is nothing to validate")
