"""The programme view's cost: a sector's worklist and each indicator, against plain SQL, in one run.

    uv run python -m bench.programme --children 1300 --repeat 15 --out bench/results-programme.json

Loads the seeded programme (`seed.generate_units`, with the clinical rules, as `puente seed-demo`
does) into a fresh PostgreSQL database, then times, in process and on the same connection pool:

- `worklist`: $worklist's work for one community (Location) and a month: the patients in scope,
  their records through the repository (access rules applied), the rules;
- `measure:<id>`: each indicator over the whole district (every patient), summary report;
- the baseline for each: the plain SQL an application without Puente would run to read the same
  rows (patients by the residence index rows, then every Observation, Immunization, Encounter,
  Condition, ServiceRequest and Task of those patients, one statement per type, JSON parsed), with
  no access rules and no rule evaluated.

It prints JSON: p50/p95 in ms for each and `ratio_p95` = Puente / baseline. Ratios, not absolute
numbers, are what to compare: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from auth.principal import Principal
from cli.seed_demo import unit_writer
from programme import measures, period, scope
from programme.records import load_records
from programme.worklist import worklist
from seed.generator import DEFAULT_AS_OF, generate_units
from seed.load import load_units
from settings import get_settings
from storage import statistics as db_statistics
from storage.database import create_engine, transaction
from storage.migrations import upgrade_async
from storage.repository import FhirRepository

ADMIN = Principal(subject="bench-programme", is_admin=True)
RELATED = (("Observation", "subject"), ("Immunization", "patient"), ("Encounter", "subject"),
           ("Condition", "subject"), ("ServiceRequest", "subject"))
_PATIENTS = """
SELECT r.id, r.content FROM resources r JOIN search_reference s ON s.resource_pk = r.pk
WHERE s.resource_type = 'Patient' AND s.param = 'residence' AND s.target_type = 'Location'
  AND s.target_id = ANY($1::text[]) AND NOT r.deleted"""
_REFERRING = """
SELECT r.id, r.content FROM resources r JOIN search_reference s ON s.resource_pk = r.pk
WHERE s.resource_type = $1 AND s.param = $2 AND s.target_type = $3 AND s.target_id = ANY($4::text[])
  AND NOT r.deleted"""
_PLACES = "SELECT r.id FROM resources r WHERE r.resource_type = 'Location' AND NOT r.deleted"


async def plain_sql(pool: asyncpg.Pool, locations: list[str]) -> int:
    """The rows a worklist or indicator needs, read with plain SQL (the baseline)."""
    async with pool.acquire() as connection:
        patients = await connection.fetch(_PATIENTS, locations)
        ids = [row["id"] for row in patients]
        rows = [orjson.loads(row["content"]) for row in patients]
        requests: list[str] = []
        for resource_type, param in RELATED:
            found = await connection.fetch(_REFERRING, resource_type, param, "Patient", ids)
            rows.extend(orjson.loads(row["content"]) for row in found)
            if resource_type == "ServiceRequest":
                requests = [row["id"] for row in found]
        found = await connection.fetch(_REFERRING, "Task", "focus", "ServiceRequest", requests)
        rows.extend(orjson.loads(row["content"]) for row in found)
    return len(rows)


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, float]:
    await fn()  # warm-up: caches, plans
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], 2)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin_dsn = args.pg_admin_dsn
    name = args.database
    if not args.reuse:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
    host = admin_dsn.split("@", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql+asyncpg://{admin_dsn.split('://', 1)[1].split('@', 1)[0]}@{host}/{name}"
    settings = get_settings().model_copy(update={"database_url": url})
    engine = create_engine(url, pool_size=4)
    # --reuse: the database of an earlier run (--keep-db, or a run stopped after loading)
    units = [next(iter(generate_units(args.children, args.seed)))] if args.reuse else \
        list(generate_units(args.children, args.seed))
    community = next(r["id"] for r in units[0].resources
                     if r["resourceType"] == "Location" and (r.get("physicalType") or {}).get("coding", [{}])[0]
                     .get("code") == "area")
    district = next(r["id"] for r in units[0].resources if r["resourceType"] == "Location" and "partOf" not in r
                    and (r.get("physicalType") or {}).get("coding", [{}])[0].get("code") == "jdn")
    started = time.perf_counter()
    if args.reuse:
        resources = -1  # counted below
    else:
        await upgrade_async(url)
        resources = await load_units(units, unit_writer(engine, settings), concurrency=4)
    await db_statistics.refresh(engine)
    loaded_s = time.perf_counter() - started
    pool = await asyncpg.create_pool(f"postgresql://{url.split('://', 1)[1]}", min_size=1, max_size=2)
    month = period.month(f"{DEFAULT_AS_OF.year}-{DEFAULT_AS_OF.month - 1:02d}")
    window = period.between("2026-05-01", "2026-10-31")
    report: dict[str, Any] = {"children": args.children, "resources": resources, "load_seconds": round(loaded_s, 1),
                              "repeat": args.repeat, "month": month.start.isoformat()[:7], "results": {}}
    try:
        async with pool.acquire() as connection:
            places = [row["id"] for row in await connection.fetch(_PLACES)]
            if resources < 0:
                resources = await connection.fetchval("SELECT count(*) FROM resources")
                report["resources"] = resources

        async def records(subject: scope.Subject) -> Any:
            async with transaction(engine, write=False) as connection:
                repository = FhirRepository(connection, ADMIN)
                return await load_records(repository, await scope.patients_in_scope(repository, subject))

        async def one_worklist() -> None:
            worklist(await records(scope.Subject("Location", community)), month)

        cases: list[tuple[str, Callable[[], Awaitable[Any]], list[str]]] = [("worklist", one_worklist, [community])]
        for measure_id, definition in measures.MEASURES.items():
            async def one_measure(definition: measures.Definition = definition) -> None:
                loaded = await records(scope.Subject("Location", district))
                measures.evaluate(definition, loaded, window, f"Location/{district}", subject_list=False,
                                  generated="")
            cases.append((f"measure:{measure_id}", one_measure, places))
        for label, fn, locations in cases:
            puente = await _timed(fn, args.repeat)
            baseline = await _timed(functools.partial(plain_sql, pool, locations), args.repeat)
            report["results"][label] = {"puente": puente, "plain_sql": baseline,
                                        "ratio_p95": round(puente["p95_ms"] / baseline["p95_ms"], 2)}
            sys.stderr.write(f"{label}: {report['results'][label]}\n")
    finally:
        await pool.close()
        await engine.dispose()
        if not args.keep_db:
            admin = await asyncpg.connect(admin_dsn)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=1300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database", default="puente_bench_programme")
    parser.add_argument("--pg-admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure the database of an earlier run, no load")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    text = json.dumps(report, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
