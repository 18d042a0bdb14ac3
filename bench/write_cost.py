"""What one write (and one poll) costs, in-process, so that two commits can be compared pair by pair.

    uv run python -m bench.write_cost --db postgres --rounds 3            # this checkout
    uv run python -m bench.write_cost --against ../other-checkout --db sqlite --rounds 3

The app runs in this process (httpx over ASGI, PUENTE_AUTH=off) on a fresh database, and a single
client sends, in turn: single creates (`POST /fhir/Observation`), household-visit transactions
(the README's example, 8 conditional creates, fresh identifiers each time) and clinic polls
(`ServiceRequest?performer=...&_lastUpdated=gt<previous Bundle.meta.lastUpdated>`). It prints JSON
with the mean wall time and the CPU time (this process, and PostgreSQL's backends) per request.

With `--auth on` the app runs with PUENTE_AUTH=on and the client is an administrator's backend
service (client_secret_basic, `system/*.cruds`, its token taken once from /auth/token): every
write then stores its AuditEvent, as in production.

With `--against DIR`, each round runs this checkout and DIR's one after the other, each in a fresh
process and database, and prints their ratio per round (this / other): a noisy machine slows both
runs of a pair alike. DIR is any checkout of Puente with its own `.venv` (`uv sync` there first).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "household-visit.json"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.write_cost", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--creates", type=int, default=400)
    p.add_argument("--visits", type=int, default=150)
    p.add_argument("--polls", type=int, default=400)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--auth", choices=("off", "on"), default="off")
    p.add_argument("--against", type=Path, help="another checkout to compare with, round by round")
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # one measurement, this process
    args = p.parse_args(argv)
    if args.once:
        sys.stdout.write(json.dumps(asyncio.run(_measure(args))) + "\n")
        return 0
    rounds = []
    for n in range(args.rounds):
        this = _run(ROOT, args)
        row: dict[str, Any] = {"round": n + 1, "this": this}
        if args.against:
            other = _run(args.against.resolve(), args)
            row["other"] = other
            row["ratio"] = {op: {k: round(this[op][k] / other[op][k], 3) for k in this[op] if other[op][k]}
                            for op in this}
        rounds.append(row)
        sys.stderr.write(json.dumps(row) + "\n")
    summary: dict[str, Any] = {"db": args.db, "rounds": rounds}
    if args.against:
        ops = rounds[0]["ratio"]
        summary["median_ratio"] = {
            op: {k: statistics.median(r["ratio"][op][k] for r in rounds) for k in ops[op]} for op in ops
        }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def _run(checkout: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a fresh process of `checkout` (its own venv), on a fresh database."""
    python = checkout / ".venv" / "bin" / "python"
    # As a module: run as a file, bench/ would lead sys.path and shadow the `programme` package.
    cmd = [str(python), "-m", "bench.write_cost", "--once", "--db", args.db, "--creates", str(args.creates),
           "--visits", str(args.visits), "--polls", str(args.polls), "--auth", args.auth]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from api.app import create_app
    from settings import Settings
    from storage.migrations import upgrade_async

    with tempfile.TemporaryDirectory(prefix="puente-write-cost-") as tmp:
        url, drop = await _database(args.db, Path(tmp))
        try:
            await upgrade_async(url)
            # OAuth 2.0 wants https: the public URL says so (nothing is sent over a network here).
            base = "https://bench" if args.auth == "on" else "http://bench"
            settings = Settings(database_url=url, auth=args.auth, base_url=base, data_dir=Path(tmp) / "data")
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url=base) as client:
                    if args.auth == "on":
                        client.headers["Authorization"] = await _administrator(app, client)
                    return await _workloads(client, args, url)
        finally:
            await drop()


async def _administrator(app: Any, client: Any) -> str:
    """`Bearer <token>` of an administrator's backend service registered here, as `puente clients
    add --admin --secret` registers one."""
    from api import services
    from auth.hashing import digest, random_secret
    from auth.models import CLIENT_SECRET_BASIC, Client

    secret = random_secret()
    registered = Client(client_id=str(uuid.uuid4()), name="bench administrator", auth_method=CLIENT_SECRET_BASIC,
                        scopes=("system/*.cruds",), grant_types=("client_credentials",), redirect_uris=(),
                        secret_hash=digest(secret), jwks=None, jwks_url=None, organization=None, is_admin=True)
    await services.of_app(app).auth_service().store.add_client(registered)
    answer = await client.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                               auth=(registered.client_id, secret))
    assert answer.status_code == 200, answer.text
    return f"Bearer {answer.json()['access_token']}"


async def _database(kind: str, tmp: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        async def nothing() -> None:
            return None
        return f"sqlite+aiosqlite:///{tmp / 'bench.db'}", nothing
    import asyncpg

    name = f"puente_write_cost_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    host_dsn = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{host_dsn}/{name}", drop


async def _workloads(client: Any, args: argparse.Namespace, url: str) -> dict[str, Any]:
    setup = [{"resourceType": "Organization", "id": "cs-la-esperanza", "name": "C.S. La Esperanza"},
             {"resourceType": "Patient", "id": "child-1", "gender": "female", "birthDate": "2024-05-01"}]
    for resource in setup:
        assert (await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)).status_code < 300
    visit = json.loads(EXAMPLE.read_text())

    def observation(n: int) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/child-1"},
                "code": {"text": "weight"}, "valueQuantity": {"value": 10 + n % 7, "unit": "kg"},
                "effectiveDateTime": "2026-12-01"}

    def household(n: int) -> dict[str, Any]:
        bundle = copy.deepcopy(visit)
        for entry in bundle["entry"]:
            for identifier in entry["resource"].get("identifier", []):
                identifier["value"] = f"{identifier['value']}-{n}"
            system, _, value = entry["request"]["ifNoneExist"].partition("|")
            entry["request"]["ifNoneExist"] = f"{system}|{value}-{n}"
        return bundle

    results: dict[str, Any] = {}
    results["create"] = await _timed(url, args.creates, lambda n: client.post("/fhir/Observation", json=observation(n)))
    results["household_visit"] = await _timed(url, args.visits, lambda n: client.post("/fhir", json=household(n)))
    watermark = ["1970-01-01T00:00:00Z"]

    async def poll(n: int) -> Any:
        response = await client.get("/fhir/ServiceRequest?performer=Organization/cs-la-esperanza"
                                     f"&_lastUpdated=gt{watermark[0]}&_count=50")
        watermark[0] = response.json()["meta"]["lastUpdated"]
        return response

    results["poll"] = await _timed(url, args.polls, poll)
    return results


async def _timed(url: str, count: int, send: Any) -> dict[str, float]:
    for n in range(min(20, count)):  # warm-up: plans, caches, prepared statements
        await send(-1 - n)
    pg_before = await _pg_cpu(url)
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(count):
        response = await send(n)
        assert response.status_code < 300, response.text
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    pg = (await _pg_cpu(url)) - pg_before
    return {"wall_ms": round(wall / count * 1000, 3), "cpu_ms": round(cpu / count * 1000, 3),
            "db_cpu_ms": round(pg / count * 1000, 3)}


async def _pg_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (0 on SQLite)."""
    if not url.startswith("postgresql"):
        return 0.0
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        pids = [r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)]
    finally:
        await conn.close()
    return sum(_cpu_seconds(pid) for pid in pids)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


if __name__ == "__main__":
    raise SystemExit(main())
