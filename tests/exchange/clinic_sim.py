"""A clinic's FHIR server, for real: a second ASGI app served by uvicorn on a free port.

It receives rest-hook notifications (a ping POSTed to /hook, or the resource PUT under /fhir) and
records each with its subscription and event number. It can be stopped and started again on the
same port, and made to lose acknowledgements: it records the event, then answers too late for
Puente's timeout, so Puente must send it again.

It is also a partner clinic's EHR (SMART Backend Services, `ClinicEhr`): a token endpoint at
/auth/token that checks Puente's signed assertions (the signature against the JWK Set registered
for the client id, iss = sub = client id, aud = the token URL, exp at most five minutes ahead, a
jti never seen before) and issues short bearer tokens; and a FHIR server at /ehr that requires them,
processes transaction Bundles of conditional creates (`If-None-Exist` on an identifier) all or
nothing, searches Tasks by `_lastUpdated`, and lets the test play the clinic's staff
(`update_task`). Its data lives in this object, so it outlives a stop and start.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.fixtures.live_server import free_port

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 300


@dataclass(frozen=True)
class TokenRequest:
    client_id: str | None
    granted: bool
    error: str | None


@dataclass
class ClinicEhr:
    """The partner side: registered clients, issued tokens, stored resources, what arrived when."""

    clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id -> its JWK Set
    token_seconds: int = 300
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # access token -> (client id, expiry)
    used_jti: set[str] = field(default_factory=set)
    token_requests: list[TokenRequest] = field(default_factory=list)
    store: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> id -> resource
    created: list[tuple[str, str]] = field(default_factory=list)  # (type, id) in creation order
    transactions: int = 0  # transaction Bundles processed (repeats included)
    refused_requests: int = 0  # FHIR requests without a valid token (401)
    lose_acks: int = 0  # the next N transactions are committed, then answered after `slow_seconds`
    slow_seconds: float = 0.0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _last_stamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def register(self, client_id: str, jwks: dict[str, Any]) -> None:
        self.clients[client_id] = jwks

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        return list(self.store.get(resource_type, {}).values())

    def with_identifier(self, resource_type: str, system: str, value: str) -> list[dict[str, Any]]:
        return [r for r in self.resources(resource_type)
                if any(i.get("system") == system and i.get("value") == value for i in r.get("identifier") or [])]

    def update_task(self, system: str, value: str, **changes: Any) -> dict[str, Any]:
        """The clinic's staff change the Task that carries this identifier (a new version)."""
        [task] = self.with_identifier("Task", system, value)
        task.update(changes)
        task["meta"] = {"versionId": str(int(task["meta"]["versionId"]) + 1), "lastUpdated": self._stamp()}
        return task

    def _stamp(self) -> str:
        now = max(datetime.now(UTC), self._last_stamp + timedelta(milliseconds=1))
        self._last_stamp = now
        return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # ---- the token endpoint ----

    def token(self, form: dict[str, str], token_url: str) -> JSONResponse:
        def refuse(error: str, description: str, client_id: str | None = None) -> JSONResponse:
            self.token_requests.append(TokenRequest(client_id, False, description))
            return JSONResponse({"error": error, "error_description": description}, status_code=401
                                if error == "invalid_client" else 400)

        if form.get("grant_type") != "client_credentials":
            return refuse("unsupported_grant_type", "client_credentials only")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return refuse("invalid_client", "a private_key_jwt client assertion is required")
        if not form.get("scope"):
            return refuse("invalid_scope", "a scope is required")
        assertion = form["client_assertion"]
        client_id = _unverified_sub(assertion)
        if not isinstance(client_id, str) or client_id not in self.clients:
            return refuse("invalid_client", f"unknown client {client_id!r}", client_id if isinstance(client_id, str)
                          else None)
        try:
            verified = jwt.decode(assertion, KeySet.import_key_set(self.clients[client_id]),  # type: ignore[arg-type]
                                  algorithms=["RS384", "ES384"])
        except (JoseError, ValueError) as exc:
            return refuse("invalid_client", f"the assertion's signature does not verify ({exc})", client_id)
        header, claims = verified.header, verified.claims
        now = time.time()
        problems = [
            header.get("alg") not in ("RS384", "ES384") and "alg must be RS384 or ES384",
            not header.get("kid") and "the header has no kid",
            claims.get("iss") != client_id and "iss must be the client id",
            claims.get("aud") != token_url and not (isinstance(claims.get("aud"), list) and token_url in claims["aud"])
            and "aud must be the token URL",
            not isinstance(claims.get("exp"), int | float) and "exp is missing",
            isinstance(claims.get("exp"), int | float) and claims["exp"] <= now and "the assertion has expired",
            isinstance(claims.get("exp"), int | float) and claims["exp"] > now + MAX_ASSERTION_SECONDS + 5
            and "exp is more than five minutes ahead",
            not isinstance(claims.get("jti"), str) and "jti is missing",
            claims.get("jti") in self.used_jti and "jti was used before",
        ]
        problem = next((p for p in problems if p), None)
        if problem:
            return refuse("invalid_client", problem, client_id)
        self.used_jti.add(claims["jti"])
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = (client_id, now + self.token_seconds)
        self.token_requests.append(TokenRequest(client_id, True, None))
        return JSONResponse({"access_token": access_token, "token_type": "bearer",
                             "expires_in": self.token_seconds, "scope": form["scope"]},
                            headers={"Cache-Control": "no-store"})

    def authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        held = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if held is None or held[1] <= time.time():
            self.refused_requests += 1
            return False
        return True

    # ---- the FHIR server ----

    def transaction(self, bundle: dict[str, Any]) -> JSONResponse:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return _outcome(400, "a transaction Bundle is expected")
        resolved: dict[str, str] = {}
        staged: list[tuple[str, str, dict[str, Any]]] = []
        answers: list[dict[str, Any]] = []
        for entry in bundle.get("entry") or []:
            request, resource = entry.get("request") or {}, copy.deepcopy(entry.get("resource") or {})
            kind = str(resource.get("resourceType"))
            if request.get("method") != "POST" or request.get("url") != kind:
                return _outcome(400, "only POST entries (creates) are taken here")
            condition = dict(parse_qsl(request.get("ifNoneExist") or ""))
            if condition:
                if set(condition) != {"identifier"} or "|" not in condition["identifier"]:
                    return _outcome(400, "If-None-Exist: identifier=system|value only")
                system, _, value = condition["identifier"].partition("|")
                matches = [r["id"] for r in self.with_identifier(kind, system, value)]
                matches += [rid for k, rid, r in staged if k == kind and any(
                    i.get("system") == system and i.get("value") == value for i in r.get("identifier") or [])]
                if len(matches) > 1:
                    return _outcome(412, f"If-None-Exist matched {len(matches)} {kind}")
                if matches:
                    resolved[entry.get("fullUrl", "")] = f"{kind}/{matches[0]}"
                    answers.append({"status": "200 OK", "location": f"{kind}/{matches[0]}"})
                    continue
            new_id = str(next(self._ids))
            resolved[entry.get("fullUrl", "")] = f"{kind}/{new_id}"
            staged.append((kind, new_id, resource))
            answers.append({"status": "201 Created", "location": f"{kind}/{new_id}/_history/1"})
        for kind, new_id, resource in staged:  # all or nothing: committed once every entry is judged
            resource = _resolve(resource, resolved)
            resource["id"], resource["meta"] = new_id, {"versionId": "1", "lastUpdated": self._stamp()}
            self.store.setdefault(kind, {})[new_id] = resource
            self.created.append((kind, new_id))
        self.transactions += 1
        return JSONResponse({"resourceType": "Bundle", "type": "transaction-response",
                             "entry": [{"response": a} for a in answers]})

    def search_tasks(self, query: dict[str, str], base: str) -> JSONResponse:
        tasks = self.resources("Task")
        since = query.get("_lastUpdated")
        if since:
            if not since.startswith("gt"):
                return _outcome(400, "_lastUpdated=gt... only")
            floor = datetime.fromisoformat(since[2:].replace("Z", "+00:00"))
            tasks = [t for t in tasks if datetime.fromisoformat(t["meta"]["lastUpdated"].replace("Z", "+00:00"))
                     > floor]
        tasks.sort(key=lambda t: t["meta"]["lastUpdated"])
        count, offset = int(query.get("_count", "50")), int(query.get("_offset", "0"))
        page = tasks[offset:offset + count]
        links = [{"relation": "self", "url": f"{base}/Task"}]
        if offset + count < len(tasks):
            rest = "&".join(f"{k}={v}" for k, v in {**query, "_offset": str(offset + count)}.items())
            links.append({"relation": "next", "url": f"{base}/Task?{rest}"})
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(tasks), "link": links,
                             "entry": [{"resource": t} for t in page]})


def _unverified_sub(assertion: str) -> Any:
    """The assertion's `sub`, read before its signature is checked: it says whose keys check it."""
    try:
        return json.loads(jws.extract_compact(assertion.encode()).payload).get("sub")
    except (JoseError, ValueError, AttributeError):
        return None


def _resolve(value: Any, resolved: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, resolved) for v in value]
    if isinstance(value, dict):
        out = {k: _resolve(v, resolved) for k, v in value.items()}
        if isinstance(value.get("reference"), str) and value["reference"] in resolved:
            out["reference"] = resolved[value["reference"]]
        return out
    return value


def _outcome(status: int, text: str) -> JSONResponse:
    return JSONResponse({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": text}]}, status_code=status)


@dataclass(frozen=True)
class Received:
    subscription: str
    event_number: int
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class ClinicSimulator:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    lose_acks: int = 0  # the next N notifications are recorded, then answered after `slow_seconds`
    slow_seconds: float = 0.0
    lost: set[tuple[str, int]] = field(default_factory=set)  # (subscription, event) whose ack was lost
    late: set[tuple[str, int]] = field(default_factory=set)  # of those, the ones answered late on purpose
    ehr: ClinicEhr = field(default_factory=ClinicEhr)  # the partner clinic's EHR (token endpoint, FHIR at /ehr)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[Any] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/auth/token"

    @property
    def ehr_base(self) -> str:
        return f"{self.base}/ehr"

    def app(self) -> FastAPI:
        app = FastAPI()
        ehr = self.ehr

        @app.post("/auth/token")
        async def token(request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            return ehr.token(form, self.token_url)

        @app.post("/ehr")
        async def transaction(request: Request) -> Response:
            if not ehr.authorised(request):
                return _outcome(401, "a valid bearer token is required")
            answer = ehr.transaction(await request.json())
            if ehr.lose_acks > 0 and answer.status_code == 200:
                ehr.lose_acks -= 1
                await asyncio.sleep(ehr.slow_seconds)  # committed, but answered after Puente gave up waiting
            return answer

        @app.get("/ehr/Task")
        async def tasks(request: Request) -> Response:
            if not ehr.authorised(request):
                return _outcome(401, "a valid bearer token is required")
            return ehr.search_tasks(dict(request.query_params), self.ehr_base)

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            return await self._record(request)

        @app.post("/fhir")
        async def handshake(request: Request) -> Response:  # a full-payload channel's handshake ping
            return await self._record(request)

        @app.put("/fhir/{resource_type}/{resource_id}")
        async def put(request: Request) -> Response:
            return await self._record(request)

        return app

    async def _record(self, request: Request) -> Response:
        body = await request.body()
        event = Received(request.headers.get("x-puente-subscription", ""),
                         int(request.headers.get("x-puente-event-number", "0")), request.method, request.url.path,
                         body, dict(request.headers))
        self.received.append(event)
        if self._server is not None and self._server.should_exit:  # stopping: the answer may not get out
            self.lost.add((event.subscription, event.event_number))
        if self.lose_acks > 0 and request.headers.get("x-puente-handshake") is None:
            self.lose_acks -= 1
            self.lost.add((event.subscription, event.event_number))
            self.late.add((event.subscription, event.event_number))
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=200)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None

    def events(self, subscription: str) -> list[int]:
        return [r.event_number for r in self.received if r.subscription == subscription and r.event_number]


def assert_in_order_with_repeats_only_where_acks_were_lost(
    sim: ClinicSimulator, subscription: str, unacknowledged: set[int] = frozenset()  # type: ignore[assignment]
) -> None:
    """Each event arrives after the one before it; the only repeats are of events whose acknowledgement
    was lost: made late on purpose here (`sim.lost`), or recorded by Puente as an attempt that got no
    2xx back (`unacknowledged`: a timeout on this busy machine, a connection cut)."""
    seen = 0
    for number in sim.events(subscription):
        if number == seen:
            assert (subscription, number) in sim.lost or number in unacknowledged, (
                f"event {number} repeated without a lost acknowledgement")
            continue
        assert number == seen + 1, f"event {number} arrived after {seen}"
        seen = number


async def unacknowledged(database_url: str, subscription: str) -> set[int]:
    """The events of which Puente recorded an attempt that got no 2xx answer."""
    from sqlalchemy import or_, select

    from exchange import tables
    from storage.database import create_engine

    a = tables.attempts
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(a.c.event_number).where(
                a.c.subscription_id == subscription,
                or_(a.c.status_code.is_(None), a.c.status_code < 200, a.c.status_code >= 300)))
            return {int(row.event_number) for row in rows}
    finally:
        await engine.dispose()
