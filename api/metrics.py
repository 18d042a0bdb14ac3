"""Prometheus metrics at /metrics: how many requests each route answered, with what status, how fast.

Routes are labelled by their template (`/fhir/{resource_type}/{resource_id}`), never by the path a
client sent, so the number of series stays bounded whatever is requested. With several worker
processes (`puente serve --workers N`) each worker writes its samples under
PROMETHEUS_MULTIPROC_DIR (set by `serve`) and a scrape, answered by any one worker, sums them all.
"""

from __future__ import annotations

import functools
import hmac
import os
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import Message, Receive, Scope, Send

from api import services
from api.http_middleware import HttpMiddleware
from fhir_mappings.outcomes import Forbidden

REQUESTS = Counter("puente_http_requests", "HTTP requests answered", ["method", "route", "status"])
DURATION = Histogram(
    "puente_http_request_duration_seconds",
    "Time from request to the start of the response",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

FHIR = "/fhir"
router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await _require_scraper(request)
    return await run_in_threadpool(_scrape)  # the multiprocess collector reads files


def _scrape() -> Response:
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _require_scraper(request: Request) -> None:
    """Who may scrape: anyone when PUENTE_AUTH=off (loopback only), else a bearer token that is
    PUENTE_METRICS_TOKEN or an access token of an admin client. Route names and request rates say
    what a programme is doing and when; they are not for anyone who can reach the port."""
    settings = services.of(request).settings
    if not settings.auth_enabled:
        return
    token = settings.metrics_token
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    principal = await services.of(request).authenticate(request)  # 401 without a valid token
    if not principal.is_admin:
        raise Forbidden("/metrics is for admin clients or the PUENTE_METRICS_TOKEN bearer token")


class MetricsMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, elapsed = 500, None

        async def observe(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status, elapsed = message["status"], time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = _route(scope)
            _counter(scope["method"], route, status).inc()
            if elapsed is not None:
                _histogram(scope["method"], route).observe(elapsed)


# The labelled series, looked up once each: `labels()` checks and joins its arguments under a lock on
# every call. Few of them: methods x route templates (not paths) x statuses.
@functools.cache
def _counter(method: str, route: str, status: int) -> Any:
    return REQUESTS.labels(method, route, str(status))


@functools.cache
def _histogram(method: str, route: str) -> Any:
    return DURATION.labels(method, route)


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    # FastAPI hands over the route as declared in its router, without the /fhir it was included under.
    path = scope.get("path", "")
    if (path == FHIR or path.startswith(FHIR + "/")) and not template.startswith(FHIR):
        template = FHIR + ("" if template == "/" else template)
    return str(template)


# The route template of a request (for the access log), as the metrics label it.
route_template = _route
