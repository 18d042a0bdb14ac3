"""Request bodies sent with `Content-Encoding: gzip` (the Android FHIR SDK compresses its uploads).

The body is inflated as the handler reads it, a bounded piece at a time, and handed on without its
Content-Encoding and Content-Length: every reader (`api.body.read_body`, form parsing) then sees the
real body and applies PUENTE_MAX_BODY_BYTES to what was *inflated*, so a small zip bomb is refused
with 413 after at most the limit plus one piece, never inflated whole in memory. A body that is not
valid gzip is a 400; an encoding other than gzip (or identity) a 415, as RFC 9110 says.
"""

from __future__ import annotations

import zlib

from starlette.types import Message, Receive, Scope, Send

from api.http_middleware import HttpMiddleware
from fhir_mappings.outcomes import Invalid, UnsupportedMediaType

PIECE = 64 * 1024  # inflated bytes handed on per message
_GZIP = {"gzip", "x-gzip"}


class RequestDecodingMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        encodings = [
            value.decode("latin-1").strip().lower()
            for name, value in scope["headers"]
            if name == b"content-encoding" and value.strip()
        ]
        codings = [c.strip() for value in encodings for c in value.split(",") if c.strip() not in ("", "identity")]
        if not codings:
            await self.app(scope, receive, send)
            return
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-encoding", b"content-length")]
        inner = {**scope, "headers": headers}
        if codings == ["gzip"] or codings == ["x-gzip"]:
            await self.app(inner, _Inflater(receive).receive, send)
        else:
            await self.app(inner, _refuse(", ".join(codings)), send)


def _refuse(coding: str) -> Receive:
    async def receive() -> Message:
        raise UnsupportedMediaType(f"Content-Encoding {coding} is not supported; send gzip or an unencoded body")

    return receive


class _Inflater:
    """A `receive` that inflates a gzip stream, at most PIECE bytes per message."""

    def __init__(self, receive: Receive) -> None:
        self.upstream = receive
        self.inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.pending = b""  # compressed bytes not yet inflated (zlib's unconsumed tail)
        self.upstream_done = False

    async def receive(self) -> Message:
        while True:
            if self.pending:
                out = self._inflate(self.pending)
                if out:
                    return {"type": "http.request", "body": out, "more_body": True}
            if self.upstream_done:
                if not self.inflater.eof:
                    raise Invalid("The gzip body ends before its end: it was cut short")
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self.upstream()
            if message["type"] != "http.request":
                return message  # http.disconnect: the reader handles it
            self.pending += message.get("body", b"")
            self.upstream_done = not message.get("more_body", False)

    def _inflate(self, data: bytes) -> bytes:
        if self.inflater.eof:
            if data.strip(b"\0"):
                raise Invalid("The body has data after the end of its gzip stream")
            self.pending = b""
            return b""
        try:
            out = self.inflater.decompress(data, PIECE)
        except zlib.error as exc:
            raise Invalid(f"The body is not valid gzip: {exc}") from exc
        self.pending = self.inflater.unconsumed_tail or self.inflater.unused_data
        return out
