"""Audit: one FHIR AuditEvent per interaction (who, which client, what, when, outcome, source IP).

The request path only builds a small dict and puts it on a queue once the response has been sent;
a background task drains the queue in batches, each batch stored as AuditEvent resources (current
version, history and search-index rows) in one transaction of multi-row inserts. A failing database
delays the batch (retried with backoff) rather than losing it; an event that cannot be stored at all
is logged and dropped, never blocking the rest.

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
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from auth.principal import Principal
from fhir_mappings import fhir_json
from settings import Settings
from storage.database import transaction
from storage.search_rows import index_rows
from storage.tables import SEARCH_TABLES, resource_history, resources
from storage.versions import fhir_instant, now_ms

log = logging.getLogger("puente.audit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

AUDIT_EVENT = "AuditEvent"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
_ACTIONS = {
    "read": "R", "vread": "R", "history-instance": "R", "history-type": "R", "history-system": "R",
    "search-type": "E", "search-system": "E", "create": "C", "update": "U", "patch": "U", "delete": "D",
    "batch": "E", "operation": "E",
}
_AUTH_ENDPOINTS = {"/auth/token": "token", "/auth/authorize": "authorize", "/auth/introspect": "introspect",
                   "/auth/revoke": "revoke"}
_SECRET_PARAMS = {"access_token", "code", "refresh_token", "client_secret", "client_assertion", "password"}


def install(app: FastAPI, settings: Settings) -> None:
    if settings.auth_enabled:
        app.add_middleware(AuditMiddleware)


async def start(app: FastAPI) -> None:
    if app.state.settings.auth_enabled:
        app.state.audit = AuditWriter(lambda: app.state.engine)
        await app.state.audit.start()


async def stop(app: FastAPI) -> None:
    writer: AuditWriter | None = getattr(app.state, "audit", None)
    if writer is not None:
        await writer.stop()


class AuditWriter:
    def __init__(
        self,
        engine: Callable[[], Any],
        *,
        batch_size: int = 500,
        linger_seconds: float = 0.5,
        max_queued: int = 50_000,
        max_retry_delay: float = 30.0,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._max_retry_delay = max_retry_delay
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queued)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._flushing = 0  # someone waits for the queue to drain: no lingering
        self.written = 0
        self.dropped = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="puente-audit-writer")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Store what is queued (waiting at most `grace_seconds`), then end the writer."""
        self._stopping = True
        self._flushing += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_seconds)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._queue.empty():
            log.error("audit writer stopped with %d events not stored", self._queue.qsize())

    async def record(self, event: dict[str, Any]) -> None:
        # Waits only when the writer is far behind: slower answers rather than lost audit records.
        await self._queue.put(event)

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored (tests, shutdown)."""
        self._flushing += 1
        try:
            await self._queue.join()
        finally:
            self._flushing -= 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            # Linger a moment so a busy server stores many events per transaction, not one each.
            deadline = loop.time() + self._linger
            while len(batch) < self._batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                elif self._flushing or loop.time() >= deadline:
                    break
                else:
                    await asyncio.sleep(0.02)
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.25
        while True:
            try:
                await self._insert(batch)
                self.written += len(batch)
                return
            except (DBAPIError, OSError) as exc:
                if self._stopping and delay > 2:
                    self.dropped += len(batch)
                    log.error("dropping %d audit events: database unreachable (%s)", len(batch), type(exc).__name__)
                    return
                log.warning("audit events not stored yet (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
            except Exception:
                if len(batch) > 1:  # find the one that fails; store the others
                    for event in batch:
                        await self._write([event])
                    return
                self.dropped += 1
                log.exception("an audit event could not be stored and was dropped")
                return

    async def _insert(self, batch: list[dict[str, Any]]) -> None:
        """Store a batch as new AuditEvent resources: a few multi-row INSERTs, not a few per event.

        The events are built here (no client input to validate) and trigger no write hooks; each
        gets its first version, a history row and its search-index rows, as a created resource would.
        """
        stamp = now_ms()
        meta = {"versionId": "1", "lastUpdated": fhir_instant(stamp)}
        stored = [
            {"resourceType": AUDIT_EVENT, "id": str(uuid.uuid4()), "meta": meta,
             **{k: v for k, v in e.items() if k not in ("resourceType", "id", "meta")}}
            for e in batch
        ]
        contents = [fhir_json.dumps(resource).decode() for resource in stored]
        current = [
            {"resource_type": AUDIT_EVENT, "id": r["id"], "version_id": 1, "last_updated": stamp, "deleted": False,
             "content": content}
            for r, content in zip(stored, contents, strict=True)
        ]
        async with transaction(self._engine(), write=True) as connection:
            inserted = await connection.execute(
                insert(resources).returning(resources.c.pk, sort_by_parameter_order=True), current
            )
            pks = list(inserted.scalars())
            await connection.execute(
                insert(resource_history),
                [{**row, "resource_pk": pk, "method": "POST"} for pk, row in zip(pks, current, strict=True)],
            )
            index: dict[str, list[dict[str, Any]]] = {}
            for pk, resource in zip(pks, stored, strict=True):
                for kind, rows in index_rows(pk, AUDIT_EVENT, resource).items():
                    index.setdefault(kind, []).extend(rows)
            for kind, rows in index.items():
                if rows:
                    await connection.execute(insert(SEARCH_TABLES[kind]), rows)


class AuditMiddleware:
    """Notes every FHIR and /auth interaction once its response has gone out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        audited = _fhir_interaction(scope.get("method", ""), path) is not None or path in _AUTH_ENDPOINTS
        if not audited or (path == "/auth/authorize" and scope.get("method") == "GET"):
            await self.app(scope, receive, send)
            return
        started = time.time()
        response: dict[str, Any] = {"status": 500, "location": None}

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"location":
                        response["location"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            app = scope.get("app")
            writer: AuditWriter | None = getattr(getattr(app, "state", None), "audit", None)
            if writer is not None:
                await writer.record(audit_event(scope, response["status"], response["location"], started))


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
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
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
    config = getattr(getattr(scope.get("app"), "state", None), "auth_config", None)
    return f"{config.issuer}/clients" if config is not None else "urn:ietf:rfc:3986"


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
