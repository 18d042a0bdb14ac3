"""With PostgreSQL's autovacuum off, Puente analyses the tables that changed enough itself
(storage.statistics.analyze_due, run by each `serve` process's storage.statistics_keeper)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.app import create_app
from auth.principal import LOCAL_EXPLORER
from storage import statistics
from storage.database import create_engine, transaction
from storage.repository import LOCK_CLASS, FhirRepository
from storage.statistics_keeper import StatisticsKeeper
from tests.conftest import BASE, make_settings
from tests.fixtures.databases import fresh_database
from tests.fixtures.waiting import until


def _patients(count: int) -> list[tuple[dict, str]]:
    return [({"resourceType": "Patient", "gender": "female", "birthDate": "2024-05-01",
              "identifier": [{"system": "urn:test", "value": str(n)}]}, f"p{n}") for n in range(count)]


async def _analysed(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()"))
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_the_tables_that_changed_enough_are_analysed_once(backend, tmp_path: Path):
    if backend != "postgres":
        return  # SQLite has no autovacuum to stand in for (statistics.refresh after bulk loads)
    async with fresh_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with transaction(engine, write=True) as connection:
                await FhirRepository(connection, LOCAL_EXPLORER).create_many(_patients(300))
            await engine.dispose()  # the backends that wrote report their counts as they end
            analysed: list[str] = []

            async def analysed_the_written_tables() -> bool:
                analysed.extend(await statistics.analyze_due(engine))
                return {"resources", "search_token"} <= set(analysed)

            await until(analysed_the_written_tables, seconds=30)
            assert "export_jobs" not in analysed  # untouched tables are left alone
            assert {"resources", "search_token", "resource_history"} <= await _analysed(url)
            assert await statistics.analyze_due(engine) == []  # nothing changed since

            # another process analysing holds the turn: this one leaves it to it
            async with transaction(engine, write=True) as connection:
                await FhirRepository(connection, LOCAL_EXPLORER).create_many(
                    [(r, f"q{n}") for n, (r, _) in enumerate(_patients(600))])
            await engine.dispose()
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            other = await asyncpg.connect(dsn)
            try:
                key = statistics._ANALYZE_KEY
                assert await other.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, key)
                assert await statistics.analyze_due(engine) == []
                await other.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, key)
            finally:
                await other.close()
            again: list[str] = []

            async def analysed_again() -> bool:
                again.extend(await statistics.analyze_due(engine))
                return "resources" in again

            await until(analysed_again, seconds=30)
        finally:
            await engine.dispose()


async def test_a_server_keeps_the_statistics_when_autovacuum_is_off(backend, tmp_path: Path):
    async with fresh_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            off = await statistics.autovacuum_is_off(engine)  # never on SQLite
            assert await StatisticsKeeper.started_if_needed(engine, every_seconds=0) is None
            keeper = await StatisticsKeeper.started_if_needed(engine, every_seconds=60)
            assert (keeper is not None) is off
            if keeper is not None:
                await keeper.stop()
        finally:
            await engine.dispose()
        if not off:
            return  # SQLite, or a PostgreSQL whose autovacuum keeps them: no keeper, as asserted
        app = create_app(make_settings(url, analyze_seconds=0.2))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                for patient, _ in _patients(120):
                    created = await client.post("/fhir/Patient", json=patient)
                    assert created.status_code == 201, created.text

            async def analysed() -> bool:
                return {"resources", "search_token"} <= await _analysed(url)

            await until(analysed, seconds=30)
