"""Search at scale on PostgreSQL: query plans (EXPLAIN ANALYZE) and latency for issue 3's query shapes.

    uv run python -m bench.search_plans --resources 200000            # load, then measure
    uv run python -m bench.search_plans --resources 200000 --reuse    # measure the database loaded before
    uv run python -m bench.search_plans --reuse --db NAME   # any Puente database, e.g. filled by seed-demo

Loads N synthetic programme resources (seed/) into a fresh database `puente_search_bench`, with index
rows made by the same code as the write path (storage.search_rows) but written with COPY, so a large
load takes minutes (one pass of extraction, ~1 ms a resource). History rows are not written: search
never reads them. lastUpdated is spread over the year before "now", in load order.

Then, for each query shape, it prints the plan of every SQL statement a search runs (EXPLAIN ANALYZE,
BUFFERS) and the latency over repeated runs with rotating values, twice: in the search engine
(parse + SQL + rows, no HTTP) and through the ASGI app in-process (the full GET, Bundle included).
Output: the plans as text, then one JSON object. Timing goals live here, never in the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from sqlalchemy import event

from auth.principal import LOCAL_EXPLORER
from bench import pg
from fhir_mappings import fhir_json
from fhir_mappings.search import parse_query
from seed import children_for_resources, generate_units
from storage import search_rows
from storage.database import create_engine
from storage.migrations import upgrade_async
from storage.search import search
from storage.tables import SEARCH_TABLES
from storage.versions import fhir_instant

DNI = "https://puente.example.org/fhir/sid/pe-dni"
LOINC_HB = "http://loinc.org|718-7"
BATCH = 2000
BASE = "http://bench.local/fhir"


@dataclass
class Samples:
    """Values the queries rotate through, collected while loading."""

    facilities: Counter[str] = field(default_factory=Counter)  # performer Organization ids of active referrals
    dnis: list[str] = field(default_factory=list)
    hb_patients: list[str] = field(default_factory=list)
    loaded: int = 0
    since: str = ""  # a lastUpdated near the end of the load (a clinic polling for what is new)

    def as_json(self) -> dict[str, Any]:
        return {
            "facilities": [f for f, _ in self.facilities.most_common(20)],
            "dnis": self.dnis[:500],
            "hb_patients": self.hb_patients[:500],
            "loaded": self.loaded,
            "since": self.since,
        }


# ---- loading -----------------------------------------------------------------------------------------


def _resources(n: int) -> Iterator[dict[str, Any]]:
    count = 0
    for unit in generate_units(children_for_resources(n)):
        for resource in unit.resources:
            if count >= n:
                return
            count += 1
            yield resource


def _sample(resource: dict[str, Any], samples: Samples, rng: random.Random) -> None:
    kind = resource["resourceType"]
    if kind == "Patient":
        for ident in resource.get("identifier", []):
            if ident.get("system") == DNI and rng.random() < 0.3:
                samples.dnis.append(ident["value"])
    elif kind == "Observation":
        codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
        subject = resource.get("subject", {}).get("reference", "")
        if "718-7" in codes and subject.startswith("Patient/") and rng.random() < 0.3:
            samples.hb_patients.append(subject.split("/", 1)[1])
    elif kind == "ServiceRequest" and resource.get("status") == "active":
        for performer in resource.get("performer", []):
            ref = performer.get("reference", "")
            if ref.startswith("Organization/"):
                samples.facilities[ref.split("/", 1)[1]] += 1


async def load(dsn: str, n: int) -> Samples:
    await upgrade_async(pg.sqlalchemy_url(dsn))
    conn = await asyncpg.connect(dsn)
    rng = random.Random(3)
    samples = Samples()
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(n, 1)
    columns = {kind: [c.name for c in table.columns] for kind, table in SEARCH_TABLES.items()}
    started = time.monotonic()
    pk = 0
    resources_batch: list[tuple[Any, ...]] = []
    rows_batch: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    async def flush() -> None:
        await conn.copy_records_to_table(
            "resources",
            records=resources_batch,
            columns=["pk", "resource_type", "id", "version_id", "last_updated", "deleted", "content"],
        )
        for kind, rows in rows_batch.items():
            await conn.copy_records_to_table(f"search_{kind}", records=rows, columns=columns[kind])
        resources_batch.clear()
        rows_batch.clear()

    try:
        for resource in _resources(n):
            pk += 1
            stamp = start + step * pk
            resource = {
                **resource,
                "meta": {**resource.get("meta", {}), "versionId": "1", "lastUpdated": fhir_instant(stamp)},
            }
            content = fhir_json.dumps(resource).decode()
            parsed = fhir_json.loads(content)  # decimals as the write path sees them
            kind = resource["resourceType"]
            resources_batch.append((pk, kind, resource["id"], 1, stamp, False, content))
            for table_kind, rows in search_rows.index_rows(pk, kind, parsed, base_url=BASE).items():
                names = columns[table_kind]
                rows_batch[table_kind].extend(tuple(row.get(c) for c in names) for row in rows)
            _sample(resource, samples, rng)
            if pk == int(n * 0.99):
                samples.since = fhir_instant(stamp)
            if len(resources_batch) >= BATCH:
                await flush()
                rate = pk / (time.monotonic() - started)
                print(f"  loaded {pk:,}/{n:,} ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        if resources_batch:
            await flush()
        await conn.execute("SELECT setval(pg_get_serial_sequence('resources', 'pk'), $1)", pk)
        print("  ANALYZE ...", file=sys.stderr, flush=True)
        await conn.execute("ANALYZE")
        samples.loaded = pk
        samples.since = samples.since or fhir_instant(start + step * pk)
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_samples (data text)")
        await conn.execute("DELETE FROM bench_samples")
        await conn.execute("INSERT INTO bench_samples VALUES ($1)", json.dumps(samples.as_json()))
    finally:
        await conn.close()
    return samples


async def stored_samples(dsn: str) -> dict[str, Any]:
    """What the load sampled; for a database loaded otherwise (`puente seed-demo`), sampled from it."""
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('bench_samples') IS NOT NULL"):
            return dict(json.loads(await conn.fetchval("SELECT data FROM bench_samples")))
        return await _samples_from_tables(conn)
    finally:
        await conn.close()


async def _samples_from_tables(conn: asyncpg.Connection) -> dict[str, Any]:
    facilities = await conn.fetch(
        "SELECT target_id FROM search_reference WHERE resource_type = 'ServiceRequest' AND param = 'performer'"
        " AND target_type = 'Organization' GROUP BY target_id ORDER BY count(*) DESC LIMIT 20")
    dnis = await conn.fetch(
        "SELECT code FROM search_token WHERE resource_type = 'Patient' AND param = 'identifier' AND system = $1"
        " ORDER BY md5(code) LIMIT 500", DNI)
    hb_patients = await conn.fetch(
        "SELECT DISTINCT r.target_id FROM search_reference r JOIN search_token t ON t.resource_pk = r.resource_pk"
        " WHERE r.resource_type = 'Observation' AND r.param = 'subject' AND t.resource_type = 'Observation'"
        " AND t.param = 'code' AND t.code = '718-7' LIMIT 500")
    since = await conn.fetchval(
        "SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY last_updated) FROM resources")
    return {
        "facilities": [row[0] for row in facilities],
        "dnis": [row[0] for row in dnis],
        "hb_patients": [row[0] for row in hb_patients],
        "loaded": await conn.fetchval("SELECT count(*) FROM resources"),
        "since": fhir_instant(since),
    }


# ---- the query shapes ----------------------------------------------------------------------------------


def queries(samples: dict[str, Any]) -> dict[str, tuple[str, list[list[tuple[str, str]]]]]:
    """name -> (resource type, rotating parameter lists)."""
    facilities = samples["facilities"][:10] or ["none"]
    since = samples["since"]
    return {
        "referral_pull": (
            "ServiceRequest",
            [
                [("performer", f"Organization/{f}"), ("status", "active"), ("_lastUpdated", f"gt{since}")]
                for f in facilities
            ],
        ),
        "patient_by_identifier": ("Patient", [[("identifier", f"{DNI}|{d}")] for d in samples["dnis"][:200]]),
        "observation_search": (
            "Observation",
            [
                [("subject", f"Patient/{p}"), ("code", LOINC_HB), ("_sort", "-date")]
                for p in samples["hb_patients"][:200]
            ],
        ),
        "include_page_100": (
            "Observation",
            [[("code", LOINC_HB), ("_count", "100"), ("_include", "Observation:subject")]],
        ),
        "referral_pull_all_active": (
            "ServiceRequest",
            [[("performer", f"Organization/{f}"), ("status", "active")] for f in facilities],
        ),
    }


def _percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "p50": at(0.5),
        "p95": at(0.95),
        "max": round(ordered[-1] * 1000, 2),
        "mean": round(statistics.fmean(ordered) * 1000, 2),
        "runs": len(ordered),
    }


async def explain(engine: Any, resource_type: str, params: list[tuple[str, str]]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement one search runs, with its real parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as connection:
            query = parse_query(resource_type, params, base_url=BASE, max_count=1000)
            await search(connection, LOCAL_EXPLORER, query, count=query.count or 50)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with engine.connect() as connection:
        for statement, parameters in captured:
            result = await connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append("\n".join(str(row[0]) for row in result))
    return plans


async def engine_latency(engine: Any, resource_type: str, variants: list[list[tuple[str, str]]], runs: int) -> dict:
    times: list[float] = []
    results: list[int] = []
    async with engine.connect() as connection:
        for i in range(runs + 5):
            params = variants[i % len(variants)]
            started = time.perf_counter()
            query = parse_query(resource_type, params, base_url=BASE, max_count=1000)
            page = await search(connection, LOCAL_EXPLORER, query, count=query.count or 50)
            elapsed = time.perf_counter() - started
            await connection.rollback()
            if i >= 5:  # warm-up
                times.append(elapsed)
                results.append(len(page.matches) + len(page.included))
    return {**_percentiles(times), "mean_entries": round(statistics.fmean(results), 1)}


async def http_latency(app: Any, resource_type: str, variants: list[list[tuple[str, str]]], runs: int) -> dict:
    times: list[float] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
        for i in range(runs + 5):
            params = variants[i % len(variants)]
            url = f"/fhir/{resource_type}?{urlencode(params)}"
            started = time.perf_counter()
            response = await client.get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{url} -> {response.status_code}: {response.text[:500]}")
            if i >= 5:
                times.append(elapsed)
    return _percentiles(times)


async def measure(dsn: str, runs: int) -> dict[str, Any]:
    from api.app import create_app
    from settings import Settings

    samples = await stored_samples(dsn)
    url = pg.sqlalchemy_url(dsn)
    engine = create_engine(url, pool_size=2)
    search_rows.configure(base_url=BASE)
    out: dict[str, Any] = {"loaded": samples["loaded"], "since": samples["since"], "queries": {}}
    try:
        for name, (resource_type, variants) in queries(samples).items():
            plans = await explain(engine, resource_type, variants[0])
            print(f"\n===== {name}: {resource_type}?{urlencode(variants[0])}", flush=True)
            for i, plan in enumerate(plans):
                print(f"--- statement {i + 1}\n{plan}", flush=True)
            out["queries"][name] = {"engine_ms": await engine_latency(engine, resource_type, variants, runs)}
    finally:
        await engine.dispose()
    app = create_app(Settings(database_url=url, auth="off", base_url=BASE.removesuffix("/fhir")))
    async with app.router.lifespan_context(app):
        for name, (resource_type, variants) in queries(samples).items():
            out["queries"][name]["http_ms"] = await http_latency(app, resource_type, variants, runs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per query shape")
    parser.add_argument("--admin-dsn", default=pg.DEFAULT_ADMIN_DSN)
    parser.add_argument("--db", default="puente_search_bench")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run loaded")
    args = parser.parse_args(argv)
    dsn = pg.dsn_for(args.admin_dsn, args.db)
    if not args.reuse:
        dsn = pg.recreate(args.admin_dsn, args.db)
        started = time.monotonic()
        asyncio.run(load(dsn, args.resources))
        print(f"  load took {time.monotonic() - started:,.0f} s", file=sys.stderr)
    result = asyncio.run(measure(dsn, args.runs))
    result["postgres"] = pg.server_version(args.admin_dsn)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
