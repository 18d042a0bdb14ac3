"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import services
from api.rendering import json_response
from storage.migrations import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
async def healthz(request: Request) -> Response:
    return json_response(request, {"status": "ok"})


@router.get("/readyz", operation_id="readyz", summary="The database is reachable and migrated to head")
async def readyz(request: Request) -> Response:
    try:
        async with services.of(request).engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
    except Exception as exc:  # any database failure means "not ready", never a crash
        return json_response(request, {"status": "unavailable", "reason": type(exc).__name__}, status=503)
    head = head_revision()
    if revision != head:
        return json_response(request, {"status": "migrating", "revision": revision, "head": head}, status=503)
    return json_response(request, {"status": "ready", "revision": revision})
