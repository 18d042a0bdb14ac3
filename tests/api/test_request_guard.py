"""The ASGI guard on its own (api.limits.RequestGuard), around small real handlers: what it does when a
client goes away, a read outlives the time budget, or a handler fails in a way no handler answers."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.limits import RequestGuard
from settings import Settings
from tests.fixtures.asgi_calls import call

PATIENT_NAME = "Quispe Huamán 45871236"


def guarded(**overrides: object) -> tuple[Starlette, dict[str, object]]:
    seen: dict[str, object] = {}

    async def slow(request: Request) -> PlainTextResponse:
        seen["started"] = True
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        await request.body()
        seen["finished"] = True
        return PlainTextResponse("done")

    async def fail(_request: Request) -> PlainTextResponse:
        raise ValueError(f"cannot index {PATIENT_NAME}")

    async def hungry(_request: Request) -> PlainTextResponse:
        raise MemoryError()

    app = Starlette(routes=[Route("/slow", slow, methods=["GET", "POST"]), Route("/fail", fail),
                            Route("/hungry", hungry)])
    values: dict[str, object] = {"database_url": "postgresql+asyncpg://nobody@127.0.0.1/none", **overrides}
    app.add_middleware(RequestGuard, settings=Settings(**values))  # type: ignore[arg-type]
    return app, seen


async def test_a_read_stops_when_its_client_disconnects():
    app, seen = guarded()
    started = time.monotonic()
    sent = await call(app, "GET", "/slow", disconnect_after=0.2)
    assert time.monotonic() - started < 2
    assert seen.get("cancelled") and not seen.get("finished")
    assert sent == []  # nobody to answer


async def test_a_write_is_not_cancelled_by_a_disconnect():
    app, seen = guarded()
    sent = await call(app, "POST", "/slow", disconnect_after=0.2)
    assert seen.get("finished") and not seen.get("cancelled")
    assert sent[0]["status"] == 200


async def test_a_read_over_the_time_budget_answers_503():
    app, seen = guarded(request_time_budget=0.3)
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/slow")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.headers["retry-after"]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and "PUENTE_REQUEST_TIME_BUDGET" in response.text
    assert seen.get("cancelled")


async def test_an_unhandled_failure_is_a_500_outcome_and_its_message_is_not_logged(caplog):
    app, _ = guarded()
    with caplog.at_level(logging.DEBUG):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/fail")
            assert response.status_code == 500
            assert response.json()["resourceType"] == "OperationOutcome"
            assert PATIENT_NAME not in response.text
            assert (await client.get("/slow", timeout=10)).status_code == 200  # the app serves on
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ValueError" in logged and "fail" in logged
    assert "45871236" not in logged and "Quispe" not in logged
    assert max(len(r.getMessage()) for r in caplog.records) <= 2100


async def test_running_out_of_memory_is_a_503_for_that_request():
    app, _ = guarded()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/hungry")
    assert response.status_code == 503
    assert "PUENTE_WORKER_MEMORY_MB" in response.text
