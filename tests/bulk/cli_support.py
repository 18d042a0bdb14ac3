"""Running `puente import` / `puente export` as users do, and looking at what they stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bulk.tables import metadata as bulk_metadata
from storage.database import create_engine
from tests.fixtures.databases import empty_all_tables

PUENTE = str(Path(sys.executable).parent / "puente")


def env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_DATA_DIR": str(data_dir),
        "PUENTE_BASE_URL": "http://127.0.0.1:8000",
        "COLUMNS": "120",
    }


def puente(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PUENTE, *args], env=env(database_url, data_dir), capture_output=True, text=True, timeout=300)


def start(database_url: str, data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PUENTE, *args],
        env=env(database_url, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def empty(database_url: str) -> None:
    await empty_all_tables(database_url)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            for table in bulk_metadata.sorted_tables:
                await connection.execute(table.delete())
    finally:
        await engine.dispose()


async def query(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def stored(database_url: str, resource_type: str) -> dict[str, int]:
    """id -> version of the current (not deleted) resources of a type."""
    rows = await query(
        database_url,
        "SELECT id, version_id FROM resources WHERE resource_type = :t AND deleted = :f",
        t=resource_type,
        f=False,
    )
    return {row.id: row.version_id for row in rows}


def patients_ndjson(path: Path, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with path.open("w") as out:
        for n, patient_id in enumerate(ids):
            out.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": patient_id,
                        "gender": "female",
                        "name": [{"family": f"Quispe{n}", "given": ["Rosa"]}],
                    }
                )
                + "\n"
            )
    return ids
