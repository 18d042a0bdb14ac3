"""`puente seed-demo` as users run it: a real process writing into a real database, twice."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.database import create_engine
from tests.conftest import BACKENDS
from tests.fixtures.databases import fresh_database


async def _run_seed_demo(database_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "puente"), "seed-demo", *args,
        env={**os.environ, "PUENTE_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def _counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT resource_type, count(*) FROM resources WHERE NOT deleted GROUP BY resource_type"))
            return {row[0]: row[1] for row in rows}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_seed_demo_loads_a_programme_with_derived_facts_and_a_rerun_changes_nothing(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path) as url:
        first = await _run_seed_demo(url, "--children", "12", "--seed", "5")
        assert "resources in" in first
        counts = await _counts(url)
        assert counts["Patient"] >= 12 and counts["Practitioner"] == 77 and counts["Immunization"] > 0
        engine = create_engine(url)
        async with engine.connect() as connection:
            derived = (await connection.execute(text(
                "SELECT count(*) FROM resources WHERE resource_type = 'Observation' AND id LIKE '%-wfa'"))).scalar()
        await engine.dispose()
        assert derived and derived > 0  # the clinical rules ran on the seeded measurements
        await _run_seed_demo(url, "--children", "12", "--seed", "5")
        assert await _counts(url) == counts  # stable ids: a re-run updates, never duplicates


async def test_seed_demo_sized_by_resources(tmp_path: Path) -> None:
    async with fresh_database("sqlite", tmp_path) as url:
        output = await _run_seed_demo(url, "--resources", "600", "--no-derived")
        total = int(output.strip().splitlines()[-1].split()[0])
        # ~32 resources per child: a cohort of ~19 children plus the programme's ~200 shared resources
        assert 450 <= total <= 850, output
        assert sum((await _counts(url)).values()) == total
