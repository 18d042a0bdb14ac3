"""How often a request's database work gives the event loop a turn: each turn is a wait behind every
other request in flight. A SQLite read by id gives none (storage.database.key_lookup), and closing
a request's connection gives none on either database (storage.database._plain_connection: no
shielded task), so a cancellation cannot land inside a close either."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.database import transaction
from tests.fixtures.builders import patient


@contextmanager
def loop_turns() -> Iterator[list[int]]:
    """Counts the loop's turns while the block runs: a callback that re-schedules itself each turn."""
    loop = asyncio.get_running_loop()
    turns = [0]
    counting = [True]

    def tick() -> None:
        if counting[0]:
            turns[0] += 1
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        yield turns
    finally:
        counting[0] = False


async def test_closing_a_request_connection_gives_the_loop_no_turn(engine: AsyncEngine, repository_in):
    async with repository_in(write=True) as repository:
        stored = await repository.create(patient("40117788"))
    for write in (False, True):
        scope = transaction(engine, write=write)
        connection = await scope.__aenter__()
        if write:
            await connection.exec_driver_sql("SELECT 1")
        with loop_turns() as turns:
            # A write's exit commits first (a trip on either database); a read's exit only closes.
            await scope.__aexit__(None, None, None)
        if not write:
            assert turns[0] == 0, turns
    async with repository_in(write=False) as repository:
        assert (await repository.read("Patient", stored.version.id)).version_id == 1


async def test_a_sqlite_read_by_id_never_yields(engine: AsyncEngine, repository_in, backend):
    async with repository_in(write=True) as repository:
        stored = await repository.create(patient("40117799"))
    async with repository_in(write=False) as repository:
        await repository.read("Patient", stored.version.id)  # the connection's first use is not measured
    with loop_turns() as turns:
        async with repository_in(write=False) as repository:
            found = await repository.read("Patient", stored.version.id)
    assert found.id == stored.version.id
    if backend == "sqlite":
        assert turns[0] == 0, turns
    else:
        assert turns[0] >= 1  # one round trip to the server, awaited


async def test_a_sqlite_write_waits_for_the_loop_only_for_its_commit(engine: AsyncEngine, repository_in, backend):
    """Its BEGIN IMMEDIATE, statements and COMMIT all run on the loop's thread (the checkpoints are
    another thread's: storage.sqlite_checkpoints); it gives the loop two turns, one for the writers
    ready in it to join its COMMIT (storage.sqlite_writers) and one to hear that it succeeded. A
    COMMIT in aiosqlite's thread gave the loop ~60 turns here while it waited."""
    async with repository_in(write=True) as repository:
        await repository.create(patient("40117800"))  # the connection's first use is not measured
    with loop_turns() as turns:
        async with repository_in(write=True) as repository:
            stored = await repository.create(patient("40117801"))
    async with repository_in(write=False) as repository:
        assert (await repository.read("Patient", stored.version.id)).version_id == 1
    if backend == "sqlite":
        assert turns[0] <= 2, turns
    else:
        assert turns[0] >= 3  # BEGIN, the insert and COMMIT: round trips to the server, awaited
