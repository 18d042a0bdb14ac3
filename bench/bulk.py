"""Bulk import and export against plain COPY / SELECT of the same rows, in the same run.

    uv run python -m bench.bulk --resources 1000000 --db postgres
    uv run python -m bench.bulk --resources 100000 --db sqlite

1. Writes N resources as NDJSON (a tenth Patients, the rest their hemoglobin Observations).
2. Floor for import: the same lines loaded with COPY (PostgreSQL) or one executemany INSERT
   (SQLite) into a one-column table. Then `puente import`'s engine (bulk.importer, clinical rules
   off, batches of 1,000) loads the file through the repository.
   The import's time includes the VACUUM (ANALYZE) that `puente import` ends with (without it the
   planner knows nothing of the new rows and each export page sorts the whole type).
   The R4 schema is compiled before the clock starts (seconds, once per process, as `serve` does at
   start-up).
3. Floor for export: `SELECT content ... ORDER BY` of the same resources, streamed to a file. Then an
   export job (bulk.runner, as an administrator) writes them to NDJSON; the process's resident
   memory is sampled every 0.1 s during it ("flat": its peak stays near its start).
Prints JSON: rates, the ratios to the floors, memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import pg
from bulk import jobs
from bulk.importer import ErrorFile, Importer
from bulk.jobs import JobStore
from bulk.request import SYSTEM, parse_export
from bulk.runner import ExportRunner, file_name, job_directory
from cli.bulk import OPERATOR
from fhir_mappings.validation import warm_up
from storage import statistics
from storage.database import create_engine
from storage.migrations import upgrade_async
from storage.repository import FhirRepository

TYPES = ("Observation", "Patient")


def write_ndjson(path: Path, count: int) -> None:
    patients = [str(uuid.uuid4()) for _ in range(max(1, count // 10))]
    with path.open("w") as out:
        for n, patient in enumerate(patients):
            out.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": patient,
                        "gender": "female",
                        "birthDate": "2024-03-01",
                        "name": [{"family": f"Quispe{n}", "given": ["Rosa"]}],
                    }
                )
                + "\n"
            )
        for n in range(count - len(patients)):
            out.write(
                json.dumps(
                    {
                        "resourceType": "Observation",
                        "id": str(uuid.uuid4()),
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                        "subject": {"reference": f"Patient/{patients[n % len(patients)]}"},
                        "effectiveDateTime": "2026-11-24T09:45:00-05:00",
                        "valueQuantity": {
                            "value": 10.4,
                            "unit": "g/dL",
                            "system": "http://unitsofmeasure.org",
                            "code": "g/dL",
                        },
                    }
                )
                + "\n"
            )


class RssSampler:
    """The process's resident memory every 0.1 s, from /proc (a thread: the event loop may be busy)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(rss_mb())

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_mb())
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def floor_import(url: str, dsn: str | None, source: Path) -> float:
    started = time.perf_counter()
    if dsn is not None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE bench_copy (content text)")
            batch: list[tuple[str]] = []
            with source.open() as lines:
                for line in lines:
                    batch.append((line.rstrip("\n"),))
                    if len(batch) == 10_000:
                        await conn.copy_records_to_table("bench_copy", records=batch, columns=["content"])
                        batch = []
            if batch:
                await conn.copy_records_to_table("bench_copy", records=batch, columns=["content"])
        finally:
            await conn.close()
    else:
        db = sqlite3.connect(url.split("///", 1)[1])
        db.execute("CREATE TABLE bench_copy (content text)")
        with source.open() as lines, db:
            db.executemany("INSERT INTO bench_copy (content) VALUES (?)", ((line.rstrip("\n"),) for line in lines))
        db.close()
    return time.perf_counter() - started


async def floor_export(url: str, dsn: str | None, target: Path) -> float:
    sql = (
        "SELECT content FROM resources WHERE resource_type IN ('Observation', 'Patient') AND deleted = false"
        " ORDER BY resource_type, last_updated, pk"
    )
    started = time.perf_counter()
    with target.open("w") as out:
        if dsn is not None:
            conn = await asyncpg.connect(dsn)
            try:
                async with conn.transaction():
                    async for record in conn.cursor(sql, prefetch=2000):
                        out.write(record["content"] + "\n")
            finally:
                await conn.close()
        else:
            db = sqlite3.connect(url.split("///", 1)[1])
            for (content,) in db.execute(sql.replace("false", "0")):
                out.write(content + "\n")
            db.close()
    return time.perf_counter() - started


async def puente_import(url: str, source: Path, workdir: Path) -> tuple[float, int, int]:
    engine = create_engine(url, pool_size=2)

    def repository(connection: AsyncConnection) -> FhirRepository:
        return FhirRepository(connection, OPERATOR)

    async def no_bundles(_repository: FhirRepository, _bundle: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("the benchmark's input has no Bundles")

    errors = ErrorFile(workdir / "errors.ndjson")
    warm_up()  # compiling the R4 schema (seconds, once per process) is not the import's rate
    try:
        importer = Importer(engine, repository, errors, write_bundle=no_bundles, batch_size=1000)
        started = time.perf_counter()
        await importer.import_file(source)
        await statistics.refresh(engine)  # as `puente import` ends: the planner must see the new rows
        return time.perf_counter() - started, importer.counts.stored, importer.counts.refused
    finally:
        errors.close()
        await engine.dispose()


async def puente_export(url: str, root: Path) -> tuple[float, int, RssSampler]:
    engine = create_engine(url, pool_size=2)
    store = JobStore(engine)
    try:
        request = parse_export(
            OPERATOR, SYSTEM, [("_type", ",".join(TYPES))], request_url="bench", prefer="respond-async"
        )
        job_id = await store.create(OPERATOR, request)
        runner = ExportRunner(store, engine, root, "bench")
        job = await store.claim("bench")
        assert job is not None and job.id == job_id
        with RssSampler() as memory:
            started = time.perf_counter()
            await runner.run(job)
            seconds = time.perf_counter() - started
        finished = await store.get(job_id)
        assert finished is not None and finished.status == jobs.COMPLETED, finished
        lines = sum(sum(1 for _ in (job_directory(root, job_id) / file_name(t)).open()) for t in TYPES)
        return seconds, lines, memory
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="puente-bench-bulk-"))
    dsn: str | None = None
    if args.db == "postgres":
        await pg._recreate(args.pg_admin_dsn, args.database)
        dsn = pg.dsn_for(args.pg_admin_dsn, args.database)
        url = pg.sqlalchemy_url(dsn)
    else:
        dsn, url = None, f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await upgrade_async(url)
    source = workdir / "input.ndjson"
    write_ndjson(source, args.resources)
    n = args.resources
    copy_s = await floor_import(url, dsn, source)
    import_s, stored, refused = await puente_import(url, source, workdir)
    assert stored == n and refused == 0, (stored, refused)
    select_s = await floor_export(url, dsn, workdir / "floor.ndjson")
    export_s, exported, memory = await puente_export(url, workdir / "exports")
    assert exported == n, exported
    return {
        "db": args.db,
        "resources": n,
        "import": {
            "seconds": round(import_s, 1),
            "resources_per_s": round(n / import_s),
            "floor": "COPY" if dsn else "executemany INSERT",
            "floor_seconds": round(copy_s, 2),
            "floor_per_s": round(n / copy_s),
            "ratio_to_floor": round(copy_s / import_s, 4),
        },
        "export": {
            "seconds": round(export_s, 1),
            "resources_per_s": round(n / export_s),
            "floor": "SELECT content, streamed",
            "floor_seconds": round(select_s, 2),
            "floor_per_s": round(n / select_s),
            "ratio_to_floor": round(select_s / export_s, 4),
            "rss_mb_start": round(memory.samples[0], 1),
            "rss_mb_peak": round(max(memory.samples), 1),
            "rss_mb_end": round(memory.samples[-1], 1),
        },
        "workdir": str(workdir),
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--pg-admin-dsn", default=os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default="puente_bench_bulk")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=1))
