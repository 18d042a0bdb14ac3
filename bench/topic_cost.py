"""What topic-based subscriptions (R5 Backport) cost: notification latency, and catching up with $events.

    uv run python -m bench.topic_cost --db postgres
    uv run python -m bench.topic_cost --db sqlite --referrals 100 --backlog 500

In this process (httpx over ASGI, PUENTE_AUTH=off, default exchange settings) on a fresh database,
with a receiver served by uvicorn on a free port:

- **latency**: one topic subscription to a clinic's referrals (full-resource); referrals are created
  one at a time, 50 ms apart, and each one's latency is from its 201 (the commit is before it) to
  the receiver's 200 for the notification Bundle that carries it: p50 / p95 / max in ms;
- **catch-up**: the subscription switched off after `--backlog` more referrals were announced
  (so delivery does not race the reads), then `$events` read in pages of 500 (id-only and
  full-resource): ms per call and per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from bench.write_cost import _database

CLINIC = "cs-la-esperanza"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.topic_cost", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--referrals", type=int, default=100)
    p.add_argument("--backlog", type=int, default=500)
    args = p.parse_args(argv)
    sys.stdout.write(json.dumps(asyncio.run(_measure(args)), indent=2) + "\n")
    return 0


class Receiver:
    """A clinic endpoint that notes when each focus arrived (perf_counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.server: Any = None
        self.task: Any = None
        self.port = 0

    async def start(self) -> None:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            now = time.perf_counter()
            for entry in json.loads(await request.body())["entry"][1:]:
                self.arrived.setdefault(entry["fullUrl"].rsplit("/", 1)[-1], now)
            return Response(status_code=200)

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


def _subscription(endpoint: str) -> dict[str, Any]:
    from exchange.topics import FILTER_CRITERIA, PAYLOAD_CONTENT, REFERRAL_TOPIC

    return {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": REFERRAL_TOPIC,
            "_criteria": {"extension": [{"url": FILTER_CRITERIA, "valueString": f"Task?owner=Organization/{CLINIC}"}]},
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": "full-resource"}]}}}


def _referral() -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/child-1"}, "performer": [{"reference": f"Organization/{CLINIC}"}]}


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from api.app import create_app
    from settings import Settings
    from storage.migrations import upgrade_async

    receiver = Receiver()
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="puente-topic-cost-") as tmp:
        url, drop = await _database(args.db, Path(tmp))
        try:
            await upgrade_async(url)
            settings = Settings(database_url=url, auth="off", base_url="http://bench", data_dir=Path(tmp) / "data",
                                subscription_endpoints="127.0.0.1")  # the receiver, on loopback
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
                    r = await client.post("/fhir/Subscription",
                                          json=_subscription(f"http://127.0.0.1:{receiver.port}/notify"))
                    assert r.status_code == 201, r.text
                    subscription_id = r.json()["id"]
                    return {"db": args.db, "latency_ms": await _latency(client, receiver, args.referrals),
                            "catch_up": await _catch_up(client, subscription_id, args.backlog)}
        finally:
            await drop()
            await receiver.stop()


async def _latency(client: Any, receiver: Receiver, count: int) -> dict[str, float]:
    committed: dict[str, float] = {}
    for _ in range(count):
        response = await client.post("/fhir/ServiceRequest", json=_referral())
        assert response.status_code == 201, response.text
        committed[response.json()["id"]] = time.perf_counter()
        await asyncio.sleep(0.05)  # a referral every 50 ms: latency, not throughput
    deadline = time.monotonic() + 60
    while not set(committed) <= set(receiver.arrived) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    waits = sorted((receiver.arrived[i] - t) * 1000 for i, t in committed.items() if i in receiver.arrived)
    return {"count": len(waits), "p50": round(statistics.median(waits), 1),
            "p95": round(waits[max(0, int(len(waits) * 0.95) - 1)], 1), "max": round(waits[-1], 1)}


async def _catch_up(client: Any, subscription_id: str, backlog: int) -> dict[str, Any]:
    for _ in range(backlog):
        response = await client.post("/fhir/ServiceRequest", json=_referral())
        assert response.status_code == 201, response.text
    current = (await client.get(f"/fhir/Subscription/{subscription_id}")).json()
    await client.put(f"/fhir/Subscription/{subscription_id}", json={**current, "status": "off"})
    found: dict[str, Any] = {"events": backlog}
    for content in ("id-only", "full-resource"):
        calls, events, started = 0, 0, time.perf_counter()
        since = 1
        while True:
            r = await client.get(f"/fhir/Subscription/{subscription_id}/$events",
                                 params={"eventsSinceNumber": str(since), "content": content})
            assert r.status_code == 200, r.text
            numbers = [int(p["part"][0]["valueString"]) for p in r.json()["entry"][0]["resource"]["parameter"]
                       if p["name"] == "notification-event"]
            calls += 1
            events += len(numbers)
            if not numbers:
                break
            since = numbers[-1] + 1
        elapsed = (time.perf_counter() - started) * 1000
        found[content] = {"calls": calls, "events_read": events, "ms_per_call": round(elapsed / calls, 1),
                          "ms_per_event": round(elapsed / max(1, events), 3)}
    return found


if __name__ == "__main__":
    raise SystemExit(main())
