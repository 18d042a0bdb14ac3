"""Request paths served as clients send them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class TrailingSlash:
    """Serve `[base]/`, `[base]/Patient/` and every other path with a trailing slash in place.

    FHIR clients (fhirclient, fhirpy, fhir-kit-client, SMART's client-js, the Android FHIR SDK) send
    `POST [base]/` for a batch or transaction. A redirect would make each of them upload the Bundle
    twice, and behind a TLS proxy the second request can lose its Authorization header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
