"""The edge of every request: the body read in full (bounded in size and time) before anything else
runs, reads stopped when their client goes away (cancelled on PostgreSQL, also when the time budget is
spent; interrupted in SQLite's thread, storage.database.ReadStop), OPTIONS and 405
answered with the real Allow list, no-store on answers that may hold patient data, and no failure
escaping to the server's own logging (which would print its message: names, DNI numbers).

Reading the body first is what keeps a stalled upload from holding a database transaction (and,
on SQLite, the write lock) or a pooled connection: handlers only ever see a body already in memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import anyio
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.safe_log import log_failure
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError, Issue, LimitExceeded, RequestTimeout, TooLarge, Unavailable
from settings import Settings
from storage.database import ReadStopped, is_sqlite, stoppable_reads

log = logging.getLogger("puente.api")

MAX_QUERY_BYTES = 64 * 1024  # a URL's query string; search parameter limits bound what it may ask
_READ_METHODS = {"GET", "HEAD"}
_CACHEABLE = ("/fhir/metadata", "/fhir/.well-known/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")


class _ClientGone(Exception):
    """The client disconnected before its request was complete: nobody to answer."""


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer responses and break cancellation)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.idle_timeout = settings.body_idle_timeout
        self.body_timeout = settings.body_timeout
        self.budget = settings.request_time_budget
        # Cancelling a read mid-statement is clean on PostgreSQL (the pool replaces the dropped
        # connection, and the server ends the orphaned statement, within statement_timeout at worst);
        # aiosqlite would leave the statement running in its thread and the connection orphaned, so
        # there a read is stopped in place instead (`_run_stoppable_read`), and the progress handler
        # stops it at the budget.
        self.cancel_reads = not is_sqlite(settings.database_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
                raise LimitExceeded(
                    f"The query string is over {MAX_QUERY_BYTES} bytes (limit MAX_QUERY_BYTES)",
                    issues=[Issue(f"A query string of at most {MAX_QUERY_BYTES} bytes", "too-costly")],
                )
            body = await self._read_body(scope, receive)
        except _ClientGone:
            return
        except FhirError as exc:
            # The rest of the body may still be on its way: answer and close the connection.
            await _send_outcome(send, exc, close=True)
            return
        if scope["method"] == "OPTIONS":
            await self._options(scope, send)
            return
        send = _response_headers(scope, send)
        if scope["method"] in _READ_METHODS or scope["path"].endswith("/_search"):
            if self.cancel_reads:
                await self._run_read(scope, body, receive, send)
            else:
                await self._run_stoppable_read(scope, body, receive, send)
        else:
            await self._run(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b"content-length")
        bodiless = declared in (None, "0") and _header(scope, b"transfer-encoding") is None
        if bodiless and scope["method"] in _READ_METHODS:
            # A GET with no body (HTTP/1.1: neither length nor chunks): nothing to wait for, and the
            # timers below were 7 % of a read by id's CPU. Only a read: an inflated upload reaches
            # here without its length (api.request_encoding). The empty message left unread is
            # harmless: what reads the client's messages later waits for the disconnect.
            return b""
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise TooLarge(f"The body is {declared} bytes; the limit is {self.max_body} bytes (PUENTE_MAX_BODY_BYTES)")
        chunks: list[bytes] = []
        size = 0
        deadline = anyio.current_time() + self.body_timeout
        while True:
            wait = min(self.idle_timeout, deadline - anyio.current_time())
            with anyio.move_on_after(max(wait, 0)) as timer:
                message = await receive()
            if timer.cancelled_caught:
                which = "PUENTE_BODY_IDLE_TIMEOUT" if wait == self.idle_timeout else "PUENTE_BODY_TIMEOUT"
                raise RequestTimeout(
                    f"The request body did not arrive in time ({which}); nothing was done",
                    issues=[Issue(f"The body stalled after {size} bytes (limit {which})", "timeout")],
                )
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge(f"The body is over the limit of {self.max_body} bytes (PUENTE_MAX_BODY_BYTES)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except ReadStopped:
            return  # its client has gone (`_run_stoppable_read`): nobody to answer, nothing failed
        except MemoryError:
            # Over PUENTE_WORKER_MEMORY_MB: this request's allocations are freed as it unwinds, and the
            # worker goes on serving the others.
            log.error("a request was refused: the worker reached PUENTE_WORKER_MEMORY_MB")
            if not started:
                await _send_outcome(send, Unavailable(
                    "The request needed more memory than this worker may use (PUENTE_WORKER_MEMORY_MB)",
                    headers={"Retry-After": "5"},
                ))
        except Exception as exc:
            # Starlette's outermost layer would answer 500 and then re-raise to the server, whose log
            # line carries the exception's message; answer here and log without it.
            log_failure("unhandled error", exc)
            if not started:
                issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
                await _send_json(send, 500, {"resourceType": "OperationOutcome", "issue": [issue.to_fhir()]})

    async def _run_read(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """A read stops when its client disconnects (nobody would see the answer) or past the budget."""
        gone = asyncio.Event()
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        with anyio.move_on_after(self.budget or math.inf) as budget:

            def on_gone() -> None:
                gone.set()
                budget.cancel()

            with _watching_disconnect(receive, on_gone):
                await self._run(scope, _replay(body, _disconnect_when(gone)), tracking)
        if budget.cancelled_caught and not started and not gone.is_set():
            await _send_outcome(send, Unavailable(
                f"The request took longer than the time budget of {self.budget:g} s (PUENTE_REQUEST_TIME_BUDGET)",
                issues=[Issue(f"Over the time budget of {self.budget:g} s (limit PUENTE_REQUEST_TIME_BUDGET); "
                              "narrow the search or retry later", "timeout")],
                headers={"Retry-After": "5"},
            ))

    async def _run_stoppable_read(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """A SQLite read stops when its client disconnects: its statements are interrupted in
        aiosqlite's thread and it unwinds as from a failure, its connection returned to the pool
        (cancelling the task instead would leave the statement running). The progress handler
        still ends it at the time budget."""
        gone = asyncio.Event()

        async def unless_gone(message: Message) -> None:
            if not gone.is_set():
                await send(message)

        with stoppable_reads() as stop:

            def on_gone() -> None:
                gone.set()
                stop.stop()

            with _watching_disconnect(receive, on_gone):
                await self._run(scope, _replay(body, _disconnect_when(gone)), unless_gone)

    async def _options(self, scope: Scope, send: Send) -> None:
        methods = allowed_methods(scope)
        if not methods:
            await _send_outcome(send, _NoRoute())
            return
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"allow", ", ".join(methods).encode())]})
        await send({"type": "http.response.body", "body": b""})


# A read is watched for its client's disconnect only once it has run this long: most end within a
# few milliseconds, before a watching task (and the task group anyio wraps it in: 8 % of a read by
# id's CPU) would pay for itself. A client that leaves a long search is noticed this much later.
WATCH_READS_AFTER = 0.05


@contextmanager
def _watching_disconnect(receive: Receive, on_gone: Callable[[], None]) -> Iterator[None]:
    """While the block runs, call `on_gone` when the client disconnects (watched from
    WATCH_READS_AFTER on). The request's body has been read already: what `receive` still brings
    is the disconnect."""
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        on_gone()

    def start() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_READS_AFTER, start)
    try:
        yield
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


class _NoRoute(FhirError):
    status = 404
    issue_code = "not-found"

    def __init__(self) -> None:
        super().__init__("No such endpoint: FHIR resources live under /fhir")


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route takes at this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in getattr(scope.get("app"), "routes", ()):
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            match, _ = route.matches({**scope, "method": method})
            if match == Match.FULL:
                methods.add(method)
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)


def _response_headers(scope: Scope, send: Send) -> Send:
    """No-store on what may carry patient data; the real Allow list on a 405."""
    path: str = scope["path"]
    cacheable = path.startswith(_CACHEABLE)

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
            names = {k.lower() for k, _ in headers}
            if message["status"] == 405:
                headers.append((b"allow", ", ".join(allowed_methods(scope)).encode()))
            if not cacheable and b"cache-control" not in names:
                headers.append((b"cache-control", b"no-store"))
            if len(headers) != len(message.get("headers", [])) or message["status"] == 405:
                message = {**message, "headers": headers}
        await send(message)

    return sending


def _replay(body: bytes, then: Receive) -> Receive:
    """The body once, as one message; later calls wait for what the client does next."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


def _disconnect_when(gone: asyncio.Event) -> Receive:
    """What a read's handler receives after its body: the disconnect, once the watcher saw it."""

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send_outcome(send: Send, exc: FhirError, *, close: bool = False) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    if close:
        extra.append((b"connection", b"close"))
    await _send_json(send, exc.status, exc.outcome(), extra)


async def _send_json(send: Send, status: int, body: dict, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    content = fhir_json.dumps(body)
    headers = [
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(content)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def cap_worker_memory(megabytes: int) -> None:
    """Cap this process's data segment (heap and private mappings, RLIMIT_DATA) at `megabytes`: past
    it an allocation fails with MemoryError, which the guard answers with 503, instead of the worker
    growing until the kernel kills it (or its neighbours). Called in `puente serve` workers only."""
    if megabytes <= 0:
        return
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        limit = megabytes * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: say so, serve anyway
        log.warning("PUENTE_WORKER_MEMORY_MB is not applied here: %s", type(exc).__name__)
