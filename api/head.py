"""HEAD for every GET (RFC 9110 §9.3.2): the same status and headers, no body.

FastAPI routes answer only the methods they declare, so HEAD was a 405. Rather than declare HEAD on
each route, a HEAD request runs as the GET it mirrors and its body is dropped here. It sits outside
the response compression, so its headers are those of the GET a client would get (Content-Encoding,
Content-Length, ETag), as HTTP requires.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Set on the GET scope a HEAD runs as: the few GETs that change state (a bulk export's kick-off)
# must refuse a HEAD rather than act on it.
HEAD_MARK = "puente.head"


def is_head(scope: Scope) -> bool:
    return bool(scope.get(HEAD_MARK))


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def headers_only(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not done and not message.get("more_body", False):
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET", HEAD_MARK: True}, receive, headers_only)
