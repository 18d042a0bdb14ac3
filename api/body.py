"""Reading request bodies: bounded in size, parsed without losing decimals."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, Issue, TooLarge


async def read_body(request: Request) -> bytes:
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"The body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # The client went away mid-upload (a phone lost signal): nothing was written, nobody to answer.
        raise Invalid("The client disconnected before sending the whole body") from exc
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    body = await read_body(request)
    if not body.strip():
        raise Invalid("The request has no body", issues=[Issue("A JSON body is required", "required")])
    try:
        return fhir_json.loads(body)
    except fhir_json.MalformedJson as exc:
        raise Invalid(
            f"The body is not valid JSON: {exc}", issues=[Issue(f"Malformed JSON: {exc}", "structure")]
        ) from exc
