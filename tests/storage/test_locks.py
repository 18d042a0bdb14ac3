"""FhirRepository.lock: several keys in one statement, held until the transaction ends (PostgreSQL)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text


async def test_several_keys_are_held_until_the_transaction_ends(repository_in, backend):
    async with repository_in(write=True) as repository:
        await repository.lock("clinical:Patient/b", "clinical:Patient/a", "clinical:Patient/a")
        if backend != "postgres":
            return  # SQLite: BEGIN IMMEDIATE already serialises writers
        held = await repository.connection.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND pid = pg_backend_pid()"))
        assert held == 2

        async def other() -> None:
            async with repository_in(write=True) as second:
                await second.lock("clinical:Patient/a")

        waiting = asyncio.create_task(other())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked behind this transaction's lock
    await asyncio.wait_for(waiting, 10)  # released at commit
