"""What the referral exchange costs: notification latency, and what active subscriptions add to a write.

    uv run python -m bench.exchange_cost --db postgres
    uv run python -m bench.exchange_cost --db sqlite --visits 100 --subscriptions 100 --referrals 100

In this process (httpx over ASGI, PUENTE_AUTH=off, default exchange settings) on a fresh database,
with a receiver served by uvicorn on a free port:

- **latency**: one rest-hook subscription to a clinic's referrals (full payload); referrals are
  created one at a time, and each one's latency is from the moment its 201 came back (the commit
  is before it) to the moment the receiver answered 200 for it: p50 / p95 / max in ms;
- **push latency** (bench.partner_push): the same for referrals pushed to a partner clinic, from the
  referral's 201 to the clinic's 200 for its transaction Bundle (token included: the first push
  asks for one);
- **subscription cost**: household-visit transactions (the README's example) timed with no
  subscription, then with `--subscriptions` active ones over the types a visit writes (criteria
  that do not match: the cost of matching, not of delivering), alternating in `--rounds` pairs in
  this one run; the ratio (with / without) per pair and their median (wall, and this process's
  CPU). The goal is under 1.10. `--criteria mixed` makes every other subscription's criteria need
  SQL (`_lastUpdated=lt...` alone), instead of equalities judged on the written index values.
  `matching_ms` is the time a visit spends in the matcher (`exchange.matching._match`, timed in
  this process) and `matching_share` its fraction of the visit's wall time; `matching_cpu_ms` and
  `matching_cpu_share` the same in this process's CPU time, which waiting for a core on a loaded
  machine does not inflate: the steadiest of these numbers.
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

from bench import partner_push
from bench.write_cost import EXAMPLE, _database, _timed

VISIT_TYPES = ("Patient", "RelatedPerson", "Observation", "Immunization", "ServiceRequest")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.exchange_cost", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--visits", type=int, default=100)
    p.add_argument("--subscriptions", type=int, default=100)
    p.add_argument("--referrals", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--criteria", choices=("equality", "mixed"), default="equality",
                   help="equality: _tag criteria (judged without SQL); mixed: every other one is a "
                        "_lastUpdated criteria, which only the search engine judges")
    args = p.parse_args(argv)
    sys.stdout.write(json.dumps(asyncio.run(_measure(args)), indent=2) + "\n")
    return 0


class Receiver:
    """A clinic endpoint that notes when each resource arrived (perf_counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = 0
        self.server: Any = None
        self.task: Any = None

    async def start(self) -> None:
        app = FastAPI()

        @app.post("/fhir")
        async def handshake() -> Response:
            return Response(status_code=200)

        @app.put("/fhir/{resource_type}/{resource_id}")
        async def put(resource_id: str, request: Request) -> Response:
            self.arrived.setdefault(resource_id, time.perf_counter())
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


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from api.app import create_app
    from settings import Settings
    from storage.migrations import upgrade_async

    MATCHING.install()
    receiver = Receiver()
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="puente-exchange-cost-") as tmp:
        url, drop = await _database(args.db, Path(tmp))
        try:
            await upgrade_async(url)
            settings = Settings(database_url=url, auth="off", base_url="http://bench", data_dir=Path(tmp) / "data",
                                subscription_endpoints="127.0.0.1")  # the receiver, on loopback
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
                    endpoint = f"http://127.0.0.1:{receiver.port}/fhir"
                    return {"db": args.db, "latency_ms": await _latency(client, receiver, endpoint, args.referrals),
                            "push_latency_ms": await partner_push.latency(client, url, Path(tmp), args.referrals,
                                                                          "http://bench"),
                            "household_visit": await _cost(client, url, endpoint, args)}
        finally:
            await drop()
            await receiver.stop()


def _subscription(criteria: str, endpoint: str) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested", "reason": "bench", "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}}


async def _latency(client: Any, receiver: Receiver, endpoint: str, count: int) -> dict[str, float]:
    r = await client.post("/fhir/Subscription", json=_subscription(
        "ServiceRequest?performer=Organization/cs-la-esperanza", endpoint))
    assert r.status_code == 201, r.text
    committed: dict[str, float] = {}
    for _ in range(count):
        response = await client.post("/fhir/ServiceRequest", json={
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/child-1"}, "performer": [{"reference": "Organization/cs-la-esperanza"}]})
        assert response.status_code == 201, response.text
        committed[response.json()["id"]] = time.perf_counter()
        await asyncio.sleep(0.05)  # a referral every 50 ms: latency, not throughput
    deadline = time.monotonic() + 60
    while not set(committed) <= set(receiver.arrived) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    waits = sorted((receiver.arrived[i] - t) * 1000 for i, t in committed.items() if i in receiver.arrived)
    await client.delete(f"/fhir/Subscription/{r.json()['id']}")
    return {"count": len(waits), "p50": round(statistics.median(waits), 1),
            "p95": round(waits[int(len(waits) * 0.95) - 1], 1), "max": round(waits[-1], 1)}


class _MatchingClock:
    """Time spent in the subscription matcher (exchange.matching._match), wrapped for this process:
    on a machine whose load swings the visit's wall time by more than the effect measured, the
    matcher's own share of a visit is the steadier number."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # this process's CPU meanwhile: not inflated by waiting for a core

    def install(self) -> None:
        from exchange import matching

        original = matching._match

        async def timed(repository: Any, written: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return await original(repository, written)
            finally:
                self.seconds += time.perf_counter() - started
                self.cpu_seconds += time.process_time() - cpu

        matching._match = timed  # type: ignore[assignment]


MATCHING = _MatchingClock()


async def _cost(client: Any, url: str, endpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    import copy

    visit = json.loads(EXAMPLE.read_text())
    counter = [0]

    def household(_: int) -> Any:
        counter[0] += 1
        bundle = copy.deepcopy(visit)
        for entry in bundle["entry"]:
            for identifier in entry["resource"].get("identifier", []):
                identifier["value"] = f"{identifier['value']}-{counter[0]}"
            system, _, value = entry["request"]["ifNoneExist"].partition("|")
            entry["request"]["ifNoneExist"] = f"{system}|{value}-{counter[0]}"
        return client.post("/fhir", json=bundle)

    for resource in ({"resourceType": "Organization", "id": "cs-la-esperanza", "name": "C.S. La Esperanza"},):
        await client.put(f"/fhir/Organization/{resource['id']}", json=resource)
    ids: list[str] = []
    rounds: list[dict[str, Any]] = []
    ratios: list[float] = []
    for _ in range(args.rounds):
        for subscription_id in ids:  # none active: switch them off
            current = (await client.get(f"/fhir/Subscription/{subscription_id}")).json()
            await client.put(f"/fhir/Subscription/{subscription_id}", json={**current, "status": "off"})
        without = await _timed(url, args.visits, household)
        if not ids:
            for n in range(args.subscriptions):
                kind = VISIT_TYPES[n % len(VISIT_TYPES)]
                criteria = f"{kind}?_tag=https://bench.example/none|sub-{n}"
                if args.criteria == "mixed" and n % 2:
                    criteria = f"{kind}?_lastUpdated=lt{1990 + n % 10}-01-{1 + n % 28:02d}"  # SQL alone
                r = await client.post("/fhir/Subscription", json=_subscription(criteria, endpoint))
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
        else:
            for subscription_id in ids:
                current = (await client.get(f"/fhir/Subscription/{subscription_id}")).json()
                await client.put(f"/fhir/Subscription/{subscription_id}", json={**current, "status": "requested"})
        spent, spent_cpu = MATCHING.seconds, MATCHING.cpu_seconds
        with_subscriptions = await _timed(url, args.visits, household)
        visits = args.visits + min(20, args.visits)  # _timed's warm-up visits are matched too
        with_subscriptions["matching_ms"] = round((MATCHING.seconds - spent) / visits * 1000, 3)
        with_subscriptions["matching_cpu_ms"] = round((MATCHING.cpu_seconds - spent_cpu) / visits * 1000, 3)
        with_subscriptions["matching_cpu_share"] = round(
            with_subscriptions["matching_cpu_ms"] / with_subscriptions["cpu_ms"], 3)
        with_subscriptions["matching_share"] = round(
            with_subscriptions["matching_ms"] / with_subscriptions["wall_ms"], 3)
        ratios.append(round(with_subscriptions["wall_ms"] / without["wall_ms"], 3))
        rounds.append({"without": without, "with": with_subscriptions, "ratio_wall": ratios[-1]})
    return {"subscriptions": args.subscriptions, "criteria": args.criteria, "rounds": rounds,
            "median_ratio_wall": statistics.median(ratios),
            "median_matching_share": statistics.median(r["with"]["matching_share"] for r in rounds),
            "median_matching_cpu_share": statistics.median(r["with"]["matching_cpu_share"] for r in rounds),
            "median_ratio_cpu": statistics.median(
                round(r["with"]["cpu_ms"] / r["without"]["cpu_ms"], 3) for r in rounds)}


if __name__ == "__main__":
    raise SystemExit(main())
