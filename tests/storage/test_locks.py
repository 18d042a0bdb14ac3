"""FhirRepository.lock: several keys in one statement, held until the transaction ends (PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from storage.search import find_matches


async def test_several_keys_are_held_until_the_transaction_ends(database_url, backend):
    engine = create_engine(database_url)
    try:
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER, search=find_matches)
            await repository.lock("clinical:Patient/b", "clinical:Patient/a", "clinical:Patient/a")
            if backend != "postgres":
                return  # SQLite: BEGIN IMMEDIATE already serialises writers
            held = await connection.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"))
            assert held == 2

            async def other() -> None:
                async with transaction(engine, write=True) as second:
                    await FhirRepository(second, LOCAL_EXPLORER, search=find_matches).lock("clinical:Patient/a")

            waiting = asyncio.create_task(other())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # blocked behind this transaction's lock
        await asyncio.wait_for(waiting, 10)  # released at commit
    finally:
        await engine.dispose()
