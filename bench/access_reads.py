"""Does a restricted caller's read grow with its history? A clinic's and a CHW's reads by id, in-process.

    uv run python -m bench.access_reads --db postgres
    uv run python -m bench.access_reads --db sqlite --clinic-referrals 2000,20000 --chw-patients 300,3000

A fresh database (never analysed, as with autovacuum off; `--analyze` to gather statistics after
each load) is filled step by step: a clinic (`Organization/clinic-a`) with `--clinic-referrals`
ServiceRequests (each about a Patient of its own), and a CHW (`Practitioner/chw1`) following
`--chw-patients` Patients with ten Observations each. After each step the same rows are read through
the repository (storage.access applies the caller's rules) by the restricted caller and by an
administrator (no rules), one at a time, `--runs` times: the ratio restricted / administrator in the
same step is what to compare, and its growth from the first step to the last is the point (1.0:
the rule costs what the row names, not the caller's history). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from auth.principal import LOCAL_EXPLORER, Principal
from bench import pg
from fhir_mappings.search import parse_query
from storage.database import create_engine, transaction
from storage.migrations import upgrade_async
from storage.repository import FhirRepository

CLINIC = Principal(subject="client:clinic-a", client_id="clinic-a", organization="Organization/clinic-a",
                   scopes=frozenset({"system/*.rs"}))
CHW = Principal(subject="user:ana", practitioner="Practitioner/chw1", role="chw", scopes=frozenset({"user/*.rs"}))
Read = Callable[[FhirRepository], Awaitable[Any]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.access_reads", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--clinic-referrals", default="2000,20000", help="cumulative steps, comma-separated")
    p.add_argument("--chw-patients", default="300,3000", help="cumulative steps, comma-separated")
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--analyze", action="store_true", help="ANALYZE after each load (PostgreSQL)")
    p.add_argument("--pg-admin-dsn", default=os.environ.get("BENCH_PG_ADMIN_DSN", pg.DEFAULT_ADMIN_DSN))
    args = p.parse_args(argv)
    if args.db == "postgres":
        url = pg.sqlalchemy_url(pg.recreate(args.pg_admin_dsn, "puente_bench_access"))
    else:
        url = f"sqlite+aiosqlite:///{os.path.join(tempfile.mkdtemp(), 'access.db')}"
    try:
        out = asyncio.run(_run(args, url))
    finally:
        if args.db == "postgres":
            pg.drop(args.pg_admin_dsn, "puente_bench_access")
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER)
            await repository.create({"resourceType": "Organization", "name": "A"}, resource_id="clinic-a")
            await repository.create({"resourceType": "Practitioner"}, resource_id="chw1")
        clinic_steps = [int(n) for n in args.clinic_referrals.split(",")]
        chw_steps = [int(n) for n in args.chw_patients.split(",")]
        results: dict[str, Any] = {"db": args.db, "analyze": args.analyze, "runs": args.runs, "steps": []}
        clinic_done = chw_done = 0
        for clinic_size, chw_size in zip(clinic_steps, chw_steps, strict=True):
            await _load_clinic(engine, clinic_done, clinic_size)
            await _load_chw(engine, chw_done, chw_size)
            clinic_done, chw_done = clinic_size, chw_size
            if args.analyze and args.db == "postgres":
                async with engine.connect() as connection:
                    await connection.execute(text("ANALYZE"))
                    await connection.commit()
            step: dict[str, Any] = {"clinic_referrals": clinic_size, "chw_patients": chw_size}
            for name, principal, read in (
                ("clinic reads a Patient", CLINIC, _by_id("Patient", "cp7")),
                ("clinic reads a ServiceRequest", CLINIC, _by_id("ServiceRequest", "sr7")),
                ("clinic searches Patient?_id", CLINIC, _search("Patient", [("_id", "cp7")])),
                ("CHW reads an Observation", CHW, _by_id("Observation", "o7-3")),
                ("CHW reads a Patient", CHW, _by_id("Patient", "k7")),
            ):
                restricted = await _p50(engine, principal, read, args.runs)
                admin = await _p50(engine, LOCAL_EXPLORER, read, args.runs)
                step[name] = {"p50_ms": round(restricted, 3), "admin_p50_ms": round(admin, 3),
                              "ratio_to_admin": round(restricted / admin, 2)}
            results["steps"].append(step)
            _log(json.dumps(step))
        first, last = results["steps"][0], results["steps"][-1]
        results["growth_of_ratio_first_to_last"] = {
            name: round(last[name]["ratio_to_admin"] / first[name]["ratio_to_admin"], 2)
            for name in first if isinstance(first[name], dict)
        }
        return results
    finally:
        await engine.dispose()


def _by_id(resource_type: str, resource_id: str) -> Read:
    async def read(repository: FhirRepository) -> Any:
        return await repository.read(resource_type, resource_id)
    return read


def _search(resource_type: str, pairs: list[tuple[str, str]]) -> Read:
    query = parse_query(resource_type, pairs)

    async def search(repository: FhirRepository) -> Any:
        return await repository.search(query, count=10)
    return search


async def _p50(engine: Any, principal: Principal, read: Read, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        async with transaction(engine, write=False) as connection:
            await read(FhirRepository(connection, principal))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _load_clinic(engine: Any, start: int, stop: int) -> None:
    for first in range(start, stop, 1000):
        ids = range(first, min(stop, first + 1000))
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER)
            await repository.create_many([({"resourceType": "Patient"}, f"cp{n}") for n in ids])
            await repository.create_many([({
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "subject": {"reference": f"Patient/cp{n}"}, "performer": [{"reference": "Organization/clinic-a"}],
            }, f"sr{n}") for n in ids])


async def _load_chw(engine: Any, start: int, stop: int) -> None:
    for first in range(start, stop, 250):
        ids = range(first, min(stop, first + 250))
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER)
            await repository.create_many([({
                "resourceType": "Patient", "generalPractitioner": [{"reference": "Practitioner/chw1"}],
            }, f"k{n}") for n in ids])
            await repository.create_many([({
                "resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                "subject": {"reference": f"Patient/k{n}"},
            }, f"o{n}-{k}") for n in ids for k in range(10)])


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
