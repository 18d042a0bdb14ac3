"""SQLite's checkpoints run in the engine's own thread, not in a writer's COMMIT
(storage.sqlite_checkpoints): the database file alone (what the write-ahead log has not yet been
copied into) receives a write only when the checkpointer has run. SQLite only: PostgreSQL has no
such thing to move."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.pooled import dbapi_connection
from storage.repository import FhirRepository
from storage.sqlite_checkpoints import Checkpointer
from tests.fixtures.builders import patient
from tests.fixtures.databases import fresh_database

_THREAD = "puente-sqlite-checkpoint"


def _patients_in_file_alone(database: Path, copy: Path) -> int:
    """Patients in the database file without its write-ahead log (as a copy of that file sees them)."""
    shutil.copyfile(database, copy)
    with sqlite3.connect(copy) as alone:
        return alone.execute("SELECT count(*) FROM resources WHERE resource_type = 'Patient'").fetchone()[0]


def _checkpoint_threads() -> int:
    return sum(thread.name.startswith(_THREAD) for thread in threading.enumerate())


async def _checkpointed_engine(url: str, interval: float) -> AsyncEngine:
    engine = create_engine(url)
    async with engine.connect() as connection:
        checkpointer: Checkpointer | None = (await dbapi_connection(connection)).checkpoints  # type: ignore[union-attr]
        # SQLite's own (in whichever COMMIT takes the log past 1,000 pages) is off.
        assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 0
    assert checkpointer is not None
    checkpointer.interval = interval
    return engine


async def _create(engine: AsyncEngine, n: int) -> str:
    async with transaction(engine, write=True) as connection:
        stored = await FhirRepository(connection, LOCAL_EXPLORER).create(patient(f"4022{n:04d}"))
    return stored.version.id


async def test_a_commit_does_not_copy_the_log_into_the_file(tmp_path: Path):
    async with fresh_database("sqlite", tmp_path) as url:
        database = Path(make_url(url).database or "")
        engine = await _checkpointed_engine(url, interval=3600)
        try:
            ids = [await _create(engine, n) for n in range(4)]
            assert _patients_in_file_alone(database, tmp_path / "copy.db") == 0
            async with transaction(engine, write=False) as connection:  # committed all the same
                repository = FhirRepository(connection, LOCAL_EXPLORER)
                assert [(await repository.read("Patient", i)).version_id for i in ids] == [1] * 4
        finally:
            await engine.dispose()


async def test_the_checkpointer_copies_it_soon_after_in_a_thread_the_engine_ends(tmp_path: Path):
    async with fresh_database("sqlite", tmp_path) as url:
        database = Path(make_url(url).database or "")
        engine = await _checkpointed_engine(url, interval=0.05)
        threads_before = _checkpoint_threads()
        try:
            for n in range(5):
                await _create(engine, n)
            for _ in range(100):  # within 0.05 s of the last commit, give or take the machine's load
                if _patients_in_file_alone(database, tmp_path / "copy.db") == 5:
                    break
                await asyncio.sleep(0.05)
            assert _patients_in_file_alone(database, tmp_path / "copy.db") == 5
            assert _checkpoint_threads() == threads_before + 1
        finally:
            await engine.dispose()
        assert _checkpoint_threads() == threads_before  # disposing of the engine ends its thread
