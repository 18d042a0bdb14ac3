"""Push latency to a partner clinic: from a referral's commit to the clinic's 200 for its transaction Bundle.

Used by bench.exchange_cost (`push_latency_ms` in its JSON). The clinic here is minimal and served
by uvicorn on a free port: a token endpoint that grants a token to any well-formed client_credentials
request with a client assertion (the signature checks are the tests' business, tests/exchange), and a
FHIR endpoint that notes when each ServiceRequest's Bundle arrived and answers 200. Puente's key is
made in the run's temporary directory.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

ORGANIZATION = "Organization/cs-partner"


class Clinic:
    def __init__(self, puente_base: str) -> None:
        self.system = f"{puente_base.rstrip('/')}/fhir/ServiceRequest"
        self.arrived: dict[str, float] = {}
        self.port = 0
        self.server: Any = None
        self.task: Any = None

    async def start(self) -> None:
        app = FastAPI()

        @app.post("/auth/token")
        async def token(request: Request) -> Response:
            form = await request.form()
            if form.get("grant_type") != "client_credentials" or not form.get("client_assertion"):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "bearer",
                                 "expires_in": 300})

        @app.post("/ehr")
        async def transaction(request: Request) -> Response:
            bundle = await request.json()
            now = time.perf_counter()
            for entry in bundle.get("entry") or []:
                for identifier in entry["resource"].get("identifier") or []:
                    if identifier.get("system") == self.system:
                        self.arrived.setdefault(identifier["value"], now)
            return JSONResponse({"resourceType": "Bundle", "type": "transaction-response", "entry": []})

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def latency(client: Any, database_url: str, workdir: Path, count: int, puente_base: str) -> dict[str, float]:
    """Register a partner, create `count` referrals addressed to it (one every 50 ms), and time each
    from its 201 (the commit is before it) to the clinic's answer: p50 / p95 / max in ms."""
    from exchange import partners
    from exchange.tokens import generate_key
    from storage.database import create_engine

    clinic = Clinic(puente_base)
    await clinic.start()
    try:
        base = f"http://127.0.0.1:{clinic.port}"
        key_file = workdir / "partner-bench.pem"
        generate_key(key_file)
        engine = create_engine(database_url)
        try:
            await partners.add(engine, name="bench clinic", base_url=f"{base}/ehr", token_url=f"{base}/auth/token",
                               client_id="puente", key_file=key_file, organization=ORGANIZATION)
        finally:
            await engine.dispose()
        committed: dict[str, float] = {}
        for _ in range(count):
            response = await client.post("/fhir/ServiceRequest", json={
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "subject": {"reference": "Patient/child-1"}, "performer": [{"reference": ORGANIZATION}]})
            assert response.status_code == 201, response.text
            committed[response.json()["id"]] = time.perf_counter()
            await asyncio.sleep(0.05)  # a referral every 50 ms: latency, not throughput
        deadline = time.monotonic() + 60
        while not set(committed) <= set(clinic.arrived) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        waits = sorted((clinic.arrived[i] - t) * 1000 for i, t in committed.items() if i in clinic.arrived)
        return {"count": len(waits), "p50": round(statistics.median(waits), 1),
                "p95": round(waits[max(0, int(len(waits) * 0.95) - 1)], 1), "max": round(waits[-1], 1)}
    finally:
        await clinic.stop()
