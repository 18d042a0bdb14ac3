"""SQLite's writers committed together (storage.sqlite_writers): writers ready in the same turn of the
event loop share one COMMIT, each in a savepoint of its own; each gets its own outcome, and none is
told its work is stored unless the COMMIT that holds it succeeded. SQLite only: PostgreSQL commits
each transaction on its own connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from tests.fixtures.builders import patient
from tests.fixtures.databases import fresh_database


class Refused(Exception):
    """What a writer's own handler raised (its request fails; the others' do not)."""


@pytest_asyncio.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with fresh_database("sqlite", tmp_path) as url:
        engine = create_engine(url)
        try:
            await _create(engine, "40330000")  # the writer's connection opened: not what is measured
            yield engine
        finally:
            await engine.dispose()


async def _create(engine: AsyncEngine, dni: str, *, then: str | None = None) -> str:
    """A write transaction creating one Patient; `then` is SQL its handler runs after the create,
    or "refuse" to fail after it."""
    async with transaction(engine, write=True) as connection:
        stored = await FhirRepository(connection, LOCAL_EXPLORER).create(patient(dni))
        if then == "refuse":
            raise Refused(dni)
        if then is not None:
            await connection.exec_driver_sql(then)
    return stored.version.id


async def _stored(engine: AsyncEngine) -> list[str]:
    """The DNIs of the Patients committed."""
    async with engine.connect() as connection:
        rows = await connection.execute(text(
            "SELECT json_extract(content, '$.identifier[0].value') FROM resources"
            " WHERE resource_type = 'Patient' ORDER BY pk"))
        return [row[0] for row in rows]


def _commits(engine: AsyncEngine) -> list[int]:
    seen = [0]

    def counted(*_: object) -> None:
        seen[0] += 1

    event.listen(engine.sync_engine, "commit", counted)
    return seen


async def test_writers_ready_together_share_one_commit(sqlite_engine: AsyncEngine):
    commits = _commits(sqlite_engine)
    dnis = [f"4033{n:04d}" for n in range(1, 11)]
    ids = await asyncio.gather(*(_create(sqlite_engine, dni) for dni in dnis))
    assert commits[0] == 1
    assert len(set(ids)) == 10
    assert await _stored(sqlite_engine) == ["40330000", *dnis]  # in the order they wrote
    async with transaction(sqlite_engine, write=False) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER)
        stamps = [(await repository.read("Patient", i)).last_updated for i in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10  # each stamped after the one before


async def test_a_writer_that_fails_takes_only_its_own_work_back(sqlite_engine: AsyncEngine):
    commits = _commits(sqlite_engine)
    outcomes = await asyncio.gather(
        _create(sqlite_engine, "40330001"), _create(sqlite_engine, "40330002", then="refuse"),
        _create(sqlite_engine, "40330003"), return_exceptions=True)
    assert isinstance(outcomes[1], Refused)
    assert all(isinstance(outcome, str) for outcome in (outcomes[0], outcomes[2]))
    assert commits[0] == 1
    assert await _stored(sqlite_engine) == ["40330000", "40330001", "40330003"]


async def test_a_commit_that_fails_fails_every_writer_in_it(sqlite_engine: AsyncEngine):
    """A foreign key checked at COMMIT (deferred, on tables of the test's own) fails the group's
    COMMIT: the first writer, whose own work was fine, is not told it was stored, and nothing is."""
    async with sqlite_engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        await connection.exec_driver_sql(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    outcomes = await asyncio.gather(
        _create(sqlite_engine, "40330004"), _create(sqlite_engine, "40330005", then="INSERT INTO child VALUES (7)"),
        return_exceptions=True)
    assert all(isinstance(outcome, DBAPIError) for outcome in outcomes), outcomes
    assert "FOREIGN KEY" in str(outcomes[0])
    assert await _stored(sqlite_engine) == ["40330000"]
    assert await _create(sqlite_engine, "40330006")  # the next writers start afresh
    assert await _stored(sqlite_engine) == ["40330000", "40330006"]


async def test_when_sqlite_rolls_the_transaction_back_itself_nobody_in_it_succeeds(sqlite_engine: AsyncEngine):
    """SQLite ends the whole transaction on some errors (a full disk, an I/O error); here the second
    writer's handler does so with a ROLLBACK of its own. The first writer's work went with it."""
    outcomes = await asyncio.gather(
        _create(sqlite_engine, "40330007"), _create(sqlite_engine, "40330008", then="ROLLBACK"),
        return_exceptions=True)
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert await _stored(sqlite_engine) == ["40330000"]
    assert await _create(sqlite_engine, "40330009")
    assert await _stored(sqlite_engine) == ["40330000", "40330009"]


async def test_a_lone_writer_commits_alone_and_one_that_fails_leaves_nothing(sqlite_engine: AsyncEngine):
    commits = _commits(sqlite_engine)
    await _create(sqlite_engine, "40330010")
    assert commits[0] == 1
    with pytest.raises(Refused):
        await _create(sqlite_engine, "40330011", then="refuse")
    await _create(sqlite_engine, "40330012")
    assert await _stored(sqlite_engine) == ["40330000", "40330010", "40330012"]


async def test_a_writer_past_its_time_budget_fails_alone(tmp_path: Path):
    """The budget (storage.database's progress handler) is each writer's own: one stopped by it
    rolls back its savepoint and answers its error; the writer after it commits in the same group."""
    async with fresh_database("sqlite", tmp_path) as url:
        engine = create_engine(url, time_budget=0.3)
        try:
            long_count = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
                          " SELECT count(*) FROM c")
            outcomes = await asyncio.gather(
                _create(engine, "40330020", then=long_count), _create(engine, "40330021"), return_exceptions=True)
            assert isinstance(outcomes[0], DBAPIError) and "interrupted" in str(outcomes[0])
            assert isinstance(outcomes[1], str)
            assert await _stored(engine) == ["40330021"]
        finally:
            await engine.dispose()
