"""The floors Puente is measured against: the least work a FastAPI/uvicorn/asyncpg stack can do.

    BENCH_FLOOR_DSN=postgresql://postgres@127.0.0.1:5432/floor \\
        python -m uvicorn bench.floors:app --workers 2 --port 8001 --no-access-log

- `GET /const`: a constant FHIR-sized body (the HTTP floor),
- `POST /insert`: the posted JSON into a jsonb table, echoed back with 201 (HTTP + insert floor),
- `GET /read/{id}`: one row by primary key (HTTP + read floor).

No validation, no ORM, raw bodies: anything Puente does beyond this is its own cost. Without
`BENCH_FLOOR_DSN` only `/const` and `/healthz` work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

TABLE = "floor_resources"
POOL_SIZE = 10  # per worker, like a default SQLAlchemy pool (5 + 10 overflow) in practice
CONSTANT = (
    b'{"resourceType":"Observation","id":"floor","status":"final","code":{"coding":[{"system":'
    b'"http://loinc.org","code":"718-7","display":"Hemoglobin [Mass/volume] in Blood"}]},'
    b'"subject":{"reference":"Patient/floor"},"effectiveDateTime":"2026-10-12T10:31:00-05:00",'
    b'"valueQuantity":{"value":10.9,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"}}'
)
JSON = "application/fhir+json"

_pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global _pool
    dsn = os.environ.get("BENCH_FLOOR_DSN")
    if dsn:
        _pool = await asyncpg.create_pool(dsn, min_size=2, max_size=POOL_SIZE)
    try:
        yield
    finally:
        if _pool is not None:
            await _pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _db() -> asyncpg.Pool:
    if _pool is None:
        raise RuntimeError("BENCH_FLOOR_DSN is not set")
    return _pool


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.get("/const")
async def const() -> Response:
    return Response(CONSTANT, media_type=JSON)


@app.post("/insert")
async def insert(request: Request) -> Response:
    body = await request.body()
    await _db().execute(f"INSERT INTO {TABLE} (id, resource) VALUES ($1, $2::jsonb)",
                        str(uuid.uuid4()), body.decode())
    return Response(body, status_code=201, media_type=JSON)


@app.get("/read/{rid}")
async def read(rid: str) -> Response:
    # jsonb comes back as text from asyncpg: no decoding in Python, as a floor should be.
    row = await _db().fetchval(f"SELECT resource FROM {TABLE} WHERE id = $1", rid)
    if row is None:
        return Response(b'{"resourceType":"OperationOutcome"}', status_code=404, media_type=JSON)
    return Response(row.encode(), media_type=JSON)


async def prepare(dsn: str, rows: Iterable[tuple[str, str]]) -> int:
    """Create the floor table and bulk-load `(id, json text)` rows; returns how many."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(f"CREATE TABLE {TABLE} (id text PRIMARY KEY, resource jsonb NOT NULL)")
        count = 0
        batch: list[tuple[str, str]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                count += await _copy(conn, batch)
                batch = []
        count += await _copy(conn, batch)
        await conn.execute(f"ANALYZE {TABLE}")
        return count
    finally:
        await conn.close()


async def _copy(conn: Any, batch: list[tuple[str, str]]) -> int:
    if batch:
        await conn.copy_records_to_table(TABLE, records=batch, columns=["id", "resource"])
    return len(batch)
