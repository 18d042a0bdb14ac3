"""One structured line per request (PUENTE_LOG_FORMAT=json): who asked what, the answer, how fast.

Only the method, the route template (`/fhir/{resource_type}/{resource_id}`: neither the ids, which a
client may choose, nor the query string, where a search by name puts a patient's name), the resource
type, the status, the client's address, the duration and the request id (added by the log filter).
"""

from __future__ import annotations

import logging
import time

from starlette.types import Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from api.metrics import route_template

log = logging.getLogger("puente.access")


class AccessLogMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = route_template(scope)
            log.info(
                "%s %s %s",
                scope["method"],
                route,
                status,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "resource_type": (scope.get("path_params") or {}).get("resource_type"),
                    "status": status,
                    # the caller's address: a trusted proxy's X-Forwarded-For (PUENTE_FORWARDED_ALLOW_IPS)
                    "client": (scope.get("client") or ("unknown",))[0],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
