"""A SQLite writer in its turn runs its statements on the event loop's thread (storage.sqlite_driver),
yet another process holding the write lock never stops the loop: the writer then waits for the lock
in aiosqlite's thread, and writes once it is free."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from sqlalchemy import make_url, select

from auth.principal import LOCAL_EXPLORER
from storage.database import transaction
from storage.repository import FhirRepository
from storage.tables import resources


async def test_a_writer_waits_for_another_process_without_stopping_the_loop(engine, database_url, backend):
    if backend != "sqlite":
        return  # PostgreSQL writers do not share one lock
    other = sqlite3.connect(make_url(database_url).database, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> float:
        async with transaction(engine, write=True) as connection:
            await FhirRepository(connection, LOCAL_EXPLORER).create({"resourceType": "Patient", "gender": "female"})
        return time.monotonic()

    ticker = asyncio.create_task(ticking())
    writer = asyncio.create_task(write())
    try:
        await asyncio.sleep(0.5)
        assert not writer.done()  # waiting for the lock ...
        assert ticks >= 10  # ... while the loop goes on serving others
        released = time.monotonic()
        other.execute("COMMIT")
        finished = await asyncio.wait_for(writer, 10)
        assert finished >= released
    finally:
        ticker.cancel()
        other.close()
    async with transaction(engine, write=False) as connection:
        assert (await connection.execute(select(resources.c.resource_type))).scalars().all() == ["Patient"]
