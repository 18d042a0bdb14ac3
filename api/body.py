"""Reading request bodies: bounded in size, parsed without losing decimals, within the JSON limits.

The ASGI guard (api.limits) has already read the whole body into memory, within its size and time
limits, before the request reached a handler. `ResourceBody` and `PatchBody` parse and check it as
dependencies declared ahead of the repository's, so FastAPI resolves them before the request's
transaction opens: a 10 MB upload is parsed and validated without holding the SQLite write lock.
Parsing and validating a large body take CPU for tens or hundreds of milliseconds: above
`PUENTE_OFFLOAD_BYTES` they run in a worker thread, so the event loop keeps answering other
requests (`/healthz` froze for 27 s on a 0.6 MB body before).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from api import services
from api.media import JSON_PATCH, require_json_body
from fhir_mappings import fhir_json
from fhir_mappings.json_limits import JsonLimits, check_json
from fhir_mappings.json_patch import check_operation_count
from fhir_mappings.outcomes import FhirError, Invalid, Issue, LimitExceeded, TooLarge
from fhir_mappings.validation import mark_validated, validate_resource
from settings import Settings


async def read_body(request: Request) -> bytes:
    limit: int = services.of(request).settings.max_body_bytes
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"The body is over the limit of {limit} bytes (PUENTE_MAX_BODY_BYTES)")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # The client went away mid-upload (a phone lost signal): nothing was written, nobody to answer.
        raise Invalid("The client disconnected before sending the whole body") from exc
    return b"".join(chunks)


def json_limits(settings: Settings) -> JsonLimits:
    return JsonLimits(
        depth=settings.max_json_depth,
        array_items=settings.max_array_items,
        string_chars=settings.max_string_chars,
        number_digits=settings.max_number_digits,
        number_exponent=settings.max_number_exponent,
    )


async def read_json(request: Request) -> Any:
    body = await read_body(request)
    request.state.body_bytes = len(body)
    settings: Settings = services.of(request).settings
    if len(body) > settings.offload_bytes:
        return await anyio.to_thread.run_sync(parse_json, body, json_limits(settings))
    return parse_json(body, json_limits(settings))


def parse_json(body: bytes, limits: JsonLimits) -> Any:
    """The body as JSON within `limits`: Invalid when malformed, LimitExceeded past a limit."""
    if not body.strip():
        raise Invalid("The request has no body", issues=[Issue("A JSON body is required", "required")])
    try:
        value = fhir_json.loads(body)
    except RecursionError as exc:
        # The parser's own recursion limit (~1,000 levels) came before ours could be checked.
        what = f"JSON nested deeper than {limits.depth} levels"
        raise LimitExceeded(f"The body exceeds a limit (PUENTE_MAX_JSON_DEPTH): {what}",
                            issues=[Issue(f"{what} (limit PUENTE_MAX_JSON_DEPTH)", "too-costly")]) from exc
    except fhir_json.MalformedJson as exc:
        message = str(exc)[:200]
        raise Invalid(
            f"The body is not valid JSON: {message}", issues=[Issue(f"Malformed JSON: {message}", "structure")]
        ) from exc
    check_json(value, limits)
    return value


async def prevalidate(request: Request, resources: list[Any]) -> None:
    """Validate a body's resources before the repository does, so that its validation of the same
    objects is skipped: a large body's in a worker thread, a single resource's on the loop. Invalid
    ones are left for the repository to report (it names the element, or the Bundle entry)."""
    settings: Settings = services.of(request).settings
    size: int = getattr(request.state, "body_bytes", 0)
    if not resources:
        return
    if size > settings.offload_bytes:
        mark_validated(await anyio.to_thread.run_sync(_valid_ones, resources))
    elif len(resources) == 1 and resources[0].get("resourceType") != "Bundle":
        # A single small resource (a create, an update): validated here on the loop, before the
        # request's transaction opens, so a SQLite writer does not validate while it holds the
        # process's write turn (storage.database). A Bundle's entries keep being validated one by
        # one by the Bundle processor, which names the failing entry.
        mark_validated(_valid_ones(resources))


def _valid_ones(resources: list[Any]) -> list[Any]:
    valid = []
    for resource in resources:
        try:
            validate_resource(resource)
        except FhirError:
            continue
        valid.append(resource)
    return valid


async def resource_body(request: Request) -> Any:
    """A FHIR JSON body (a resource or a Bundle), parsed within the limits; its resources validated
    off the event loop when it is large."""
    require_json_body(request)
    value = await read_json(request)
    await prevalidate(request, _resources_in(value))
    return value


async def patch_body(request: Request) -> Any:
    """A JSON Patch document, parsed within the limits and at most PUENTE_MAX_PATCH_OPERATIONS long.

    `application/json` is taken too when the body is an array: many clients send a patch that way."""
    require_json_body(request, allowed=(JSON_PATCH, "application/json"))
    operations = await read_json(request)
    if not isinstance(operations, list):
        raise Invalid(
            'A JSON Patch is an array of operations, e.g. [{"op": "replace", "path": "/active", "value": false}]',
            issues=[Issue("The body must be a JSON array of JSON Patch operations", "structure")],
        )
    check_operation_count(operations, services.of(request).settings.max_patch_operations)
    return operations


def _resources_in(value: Any) -> list[Any]:
    """What the repository will validate: the resource itself, or a Bundle's entry resources."""
    if not isinstance(value, dict):
        return []
    entries = value.get("entry") if value.get("resourceType") == "Bundle" else None
    if isinstance(entries, list):
        return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    return [value]


# Declare these before RepositoryDep in a handler's parameters: they are then resolved first.
ResourceBody = Annotated[Any, Depends(resource_body)]
PatchBody = Annotated[Any, Depends(patch_body)]
