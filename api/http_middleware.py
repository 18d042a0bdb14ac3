"""The shape every pure ASGI middleware of ours shares: HTTP requests go to its `http`, anything else
(the lifespan) straight on to the app. Pure ASGI, not BaseHTTPMiddleware, which would buffer
responses and break cancellation (api.limits)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware(ABC):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    @abstractmethod
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (calling `self.app` to pass it on)."""
