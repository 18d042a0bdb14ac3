"""A request id for every request: taken from the caller's X-Request-Id when it is a sane token (a
proxy or app that already has one keeps it), made up otherwise; echoed in the response's X-Request-Id
and put on every log line written while the request is handled (`api.logs`)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware

HEADER = "X-Request-Id"
# Whatever a client sends is logged: only short, plain tokens are kept, so nothing can be smuggled
# into a log line (newlines, a name, a token) through this header.
_SANE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

current: ContextVar[str | None] = ContextVar("puente_request_id", default=None)


def from_header(value: str | None) -> str:
    return value if value is not None and _SANE.match(value) else uuid.uuid4().hex


class RequestIdMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = from_header(given)
        token = current.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            current.reset(token)
