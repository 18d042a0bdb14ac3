"""Audit: one FHIR AuditEvent per interaction (who, which client, what, when, outcome, source IP).

No interaction is acknowledged before its AuditEvent is stored, so a crash (kill -9 included) never
leaves an answered request without its record:

- a successful write stores its AuditEvent in its own transaction, just before the commit
  (`record_in_transaction`): both are kept or neither is;
- everything else (reads, searches, failed writes, the /auth endpoints) hands its event to the
  `AuditWriter` when the response is about to start, and the response waits until the writer has
  committed it. The writer stores whatever has queued meanwhile in one transaction (group commit),
  so a busy server stores many events per commit. If the database cannot take the record, the
  client gets a 503 instead of an answer nobody could trace.

Records are kept when PUENTE_AUTH is on. With auth off (local exploration on loopback) there is no
one to attribute an interaction to, and system history stays free of audit records.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from api import safe_log, services
from api.services import Services
from auth.principal import Principal
from fhir_mappings import fhir_json
from fhir_mappings.code_systems import AUDIT_EVENT_TYPE, DICOM, RESTFUL_INTERACTION, SECURITY_SOURCE_TYPE
from fhir_mappings.outcomes import ServiceUnavailable
from settings import Settings
from storage import clock, version_writes
from storage.background import cancel_and_wait
from storage.database import transaction
from storage.versions import fhir_instant

log = logging.getLogger("puente.audit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

AUDIT_EVENT = "AuditEvent"
_ACTIONS = {
    "read": "R", "vread": "R", "history-instance": "R", "history-type": "R", "history-system": "R",
    "search-type": "E", "search-system": "E", "create": "C", "update": "U", "patch": "U", "delete": "D",
    "batch": "E", "operation": "E",
}
_AUTH_ENDPOINTS = {"/auth/token": "token", "/auth/authorize": "authorize", "/auth/introspect": "introspect",
                   "/auth/revoke": "revoke"}
_SECRET_PARAMS = {"access_token", "code", "refresh_token", "client_secret", "client_assertion", "password"}
# request.state keys: when the interaction started, whether its event is already in its transaction,
# and the answer a write gave (status, Location) for that event.
STARTED, RECORDED, OUTCOME = "audit_started", "audit_recorded", "audit_outcome"


class AuditNotStored(Exception):
    """The AuditEvent could not be stored: the interaction must not be acknowledged."""


def install(app: FastAPI, settings: Settings) -> None:
    if settings.auth_enabled:
        app.add_middleware(AuditMiddleware)


async def start(shared: Services) -> None:
    if shared.settings.auth_enabled:
        shared.audit = AuditWriter(lambda: shared.engine)
        await shared.audit.start()


async def stop(shared: Services) -> None:
    if shared.audit is not None:
        await shared.audit.stop()
        shared.audit = None


def _services(scope: Scope) -> Services | None:
    app = scope.get("app")
    return None if app is None else services.of_app(app)


def enabled(request: Request) -> bool:
    return services.of(request).audit is not None and audited(request.scope)


def note_outcome(request: Request, status: int, location: str | None = None) -> None:
    """What a write answers, for the AuditEvent its transaction stores (`record_in_transaction`)."""
    request.state.audit_outcome = (status, location)


def record_of_create(request: Request) -> Callable[[str, str], dict[str, Any]]:
    """The AuditEvent of the request's create once it has stored `type/id` (201), for the storage
    to store with it (FhirRepository.record_with_create): the same event `record_in_transaction`
    would store after it."""
    def record(resource_type: str, resource_id: str) -> dict[str, Any]:
        started = getattr(request.state, STARTED, time.time())
        return audit_event(request.scope, 201, f"{resource_type}/{resource_id}", started)

    return record


def recorded(request: Request) -> None:
    """The request's AuditEvent is stored (with its write): nothing else is to store one."""
    request.state.audit_recorded = True


async def record_in_transaction(connection: AsyncConnection, request: Request) -> None:
    """Store the AuditEvent of a successful write in the write's own transaction (before its commit)."""
    status, location = getattr(request.state, OUTCOME, (200, None))
    started = getattr(request.state, STARTED, time.time())
    await store_events(connection, [audit_event(request.scope, status, location, started)])
    recorded(request)


async def store_events(connection: AsyncConnection, events: Sequence[dict[str, Any]]) -> None:
    """AuditEvents as new resources (current version, history, index rows), written by the server."""
    write_clock = await clock.write_clock(connection)
    items = []
    for event in events:
        resource = {k: v for k, v in event.items() if k not in ("id", "meta")}
        resource["resourceType"] = AUDIT_EVENT
        version = version_writes.new_version(resource, str(uuid.uuid4()), 1, write_clock.stamp(), method="POST")
        items.append((version, resource))
    await version_writes.insert_new(connection, items, version_writes.SERVER)


class AuditWriter:
    """Stores the events it is given, many per transaction, and tells each caller when its event is in."""

    def __init__(
        self,
        engine: Callable[[], Any],
        *,
        batch_size: int = 500,
        max_queued: int = 50_000,
        max_retry_delay: float = 2.0,
        give_up_after: float = 10.0,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._max_retry_delay = max_retry_delay
        self._give_up_after = give_up_after
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="puente-audit-writer")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Store what is queued (waiting at most `grace_seconds`), then end the writer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_seconds)
        await cancel_and_wait(self._task)
        while not self._queue.empty():
            _, waiter = self._queue.get_nowait()
            if not waiter.done():
                waiter.set_exception(AuditNotStored("the server is stopping"))
            self._queue.task_done()

    async def record(self, event: dict[str, Any]) -> None:
        """Return once `event` is committed; AuditNotStored if it cannot be."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, waiter))
        await waiter

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored (tests, shutdown)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # No lingering: what queued while the last batch was written goes in this one.
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        delay, deadline = 0.05, time.monotonic() + self._give_up_after
        while True:
            try:
                async with transaction(self._engine(), write=True) as connection:
                    await store_events(connection, [event for event, _ in batch])
            except (DBAPIError, OSError) as exc:
                if time.monotonic() + delay > deadline:
                    log.error("%d audit events not stored: database unreachable (%s)", len(batch), type(exc).__name__)
                    self._fail(batch, AuditNotStored("the audit trail cannot be written"))
                    return
                log.warning("audit events not stored yet (%s); retrying in %.2fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            except Exception as exc:
                if len(batch) > 1:  # find the one that fails; store the others
                    for item in batch:
                        await self._write([item])
                    return
                safe_log.log_failure("an audit event could not be stored", exc, log)
                self._fail(batch, AuditNotStored("the audit event could not be stored"))
                return
            self.written += len(batch)
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_result(None)
            return

    def _fail(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]], error: AuditNotStored) -> None:
        self.dropped += len(batch)
        for _, waiter in batch:
            if not waiter.done():
                waiter.set_exception(error)


def audited(scope: Scope) -> bool:
    path = scope.get("path", "") if scope["type"] == "http" else ""
    if path == "/auth/authorize" and scope.get("method") == "GET":
        return False  # the login page itself; the sign-in (POST) is audited
    if scope.get("method") == "OPTIONS":
        return False  # what a path allows: no interaction with anyone's data
    return _fhir_interaction(scope.get("method", ""), path) is not None or path in _AUTH_ENDPOINTS


class AuditMiddleware:
    """Holds every audited answer until its AuditEvent is stored (unless its transaction stored it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not audited(scope):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[STARTED] = time.time()
        refused = False

        async def observe(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the client already has the 503 below
            if message["type"] == "http.response.start" and not state.get(RECORDED):
                shared = _services(scope)
                writer = None if shared is None else shared.audit
                if writer is not None:
                    location = next((v.decode("latin-1") for k, v in message.get("headers", [])
                                     if k.lower() == b"location"), None)
                    try:
                        await writer.record(audit_event(scope, message["status"], location, state[STARTED]))
                    except AuditNotStored as exc:
                        refused = True
                        await _unavailable(send, str(exc))
                        return
            await send(message)

        await self.app(scope, receive, observe)


async def _unavailable(send: Any, reason: str) -> None:
    error = ServiceUnavailable(f"The request was not answered: {reason}; try again shortly",
                               headers={"Retry-After": "5"})
    body = fhir_json.dumps(error.outcome())
    headers = [(b"content-type", b"application/fhir+json"), (b"retry-after", b"5"),
               (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def audit_event(scope: Scope, status: int, location: str | None, started: float) -> dict[str, Any]:
    """The AuditEvent (FHIR R4) for one HTTP interaction."""
    method, path = scope.get("method", ""), scope.get("path", "")
    state = scope.get("state") or {}
    principal: Principal | None = state.get("principal")
    client_addr = (scope.get("client") or ("unknown",))[0]
    event: dict[str, Any] = {
        "resourceType": AUDIT_EVENT,
        "recorded": fhir_instant(datetime.fromtimestamp(started, UTC)),
        "outcome": "0" if status < 400 else "4" if status < 500 else "8",
        "outcomeDesc": f"HTTP {status}",
        "source": {
            "observer": {"display": "Puente FHIR server"},
            "type": [{"system": SECURITY_SOURCE_TYPE, "code": "4",
                      "display": "Application Server"}],
        },
        "agent": _agents(scope, principal, state, str(client_addr)),
    }
    interaction = _fhir_interaction(method, path)
    if interaction is not None:
        code, resource_type, reference = interaction
        event["type"] = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        event["subtype"] = [{"system": RESTFUL_INTERACTION, "code": code}]
        event["action"] = _ACTIONS[code]
        if code == "create" and location:
            reference = _reference_from_location(location)
        entity: dict[str, Any] = {}
        if reference:
            entity["what"] = {"reference": reference}
        if resource_type:
            entity["name"] = resource_type
        query = _safe_query(scope.get("query_string", b""))
        if query:
            entity["query"] = base64.b64encode(query.encode()).decode()
        if entity:
            event["entity"] = [entity]
    else:
        endpoint = _AUTH_ENDPOINTS[path]
        event["type"] = {"system": DICOM, "code": "110114", "display": "User Authentication"}
        event["subtype"] = [{"system": "urn:puente:auth-endpoint", "code": endpoint}]
        event["action"] = "E"
    return event


def _agents(scope: Scope, principal: Principal | None, state: dict[str, Any], address: str) -> list[dict[str, Any]]:
    network = {"address": address, "type": "2"}  # 2 = IP address
    client_system = _client_system(scope)
    if principal is not None:
        agents: list[dict[str, Any]] = []
        person = principal.practitioner or (principal.role and principal.subject)
        if person:
            who: dict[str, Any] = {"display": principal.name or principal.subject}
            if principal.practitioner:
                who["reference"] = principal.practitioner
            agents.append({"who": who, "altId": principal.subject, "requestor": True, "network": network})
        if principal.client_id:
            agents.append({
                "who": {"identifier": {"system": client_system, "value": principal.client_id}},
                "requestor": not agents,
                **({} if agents else {"network": network}),
            })
        if agents:
            return agents
    # Not (or not yet) authenticated: record who the request claimed to be.
    claimed_user, claimed_client = state.get("audit_user"), state.get("audit_client")
    agents = []
    if claimed_user:
        agents.append({"who": {"display": str(claimed_user)[:128]}, "requestor": True, "network": network})
    if claimed_client:
        agents.append({
            "who": {"identifier": {"system": client_system, "value": str(claimed_client)[:64]}},
            "requestor": not agents,
            **({} if agents else {"network": network}),
        })
    return agents or [{"who": {"display": "unauthenticated"}, "requestor": True, "network": network}]


def _client_system(scope: Scope) -> str:
    shared = _services(scope)
    auth = None if shared is None else shared.auth
    return f"{auth.config.issuer}/clients" if auth is not None else "urn:ietf:rfc:3986"


def _fhir_interaction(method: str, path: str) -> tuple[str, str | None, str | None] | None:
    """(restful-interaction code, resource type, reference) of a FHIR request; None if not one."""
    if path != "/fhir" and not path.startswith("/fhir/"):
        return None
    parts = [p for p in path[len("/fhir"):].split("/") if p]
    if not parts:
        return ("batch", None, None) if method == "POST" else ("search-system", None, None)
    if parts[0] in ("metadata", ".well-known"):
        return None
    if any(p.startswith("$") for p in parts):
        resource_type = parts[0] if parts[0][:1].isupper() else None
        return "operation", resource_type, "/".join(parts[:2]) if len(parts) > 2 else None
    if parts[0] == "_history":
        return "history-system", None, None
    if parts[0] == "_search":
        return "search-system", None, None
    resource_type = parts[0]
    if len(parts) == 1:
        code = {"GET": "search-type", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        return code.get(method, "search-type"), resource_type, None
    if parts[1] == "_search":
        return "search-type", resource_type, None
    if parts[1] == "_history":
        return "history-type", resource_type, None
    reference = f"{resource_type}/{parts[1]}"
    if len(parts) >= 3 and parts[2] == "_history":
        if len(parts) == 4:
            return "vread", resource_type, f"{reference}/_history/{parts[3]}"
        return "history-instance", resource_type, reference
    code = {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    return code.get(method, "read"), resource_type, reference


def _reference_from_location(location: str) -> str | None:
    parts = [p for p in urlsplit(location).path.split("/") if p]
    if "fhir" in parts:
        parts = parts[parts.index("fhir") + 1 :]
    return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else None


def _safe_query(raw: bytes) -> str:
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in _SECRET_PARAMS])
