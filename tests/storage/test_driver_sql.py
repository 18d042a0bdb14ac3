"""The write path's statements that bypass SQLAlchemy's execution layer still behave like SQLAlchemy's:
inside the request's transaction, and failing with DBAPIError (so a deadlock is still a 503 to retry)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError

from api.errors import transient_reason
from storage.driver_sql import DriverStatement
from tests.storage.conftest import statements_sent


def test_named_placeholders_become_numbered_ones_once_each() -> None:
    statement = DriverStatement.from_named(
        "SELECT CAST(:ids AS bigint[]), :name, x::text FROM t WHERE a = :name AND b = ANY(:ids)"
    )
    assert statement.sql == "SELECT CAST($1 AS bigint[]), $2, x::text FROM t WHERE a = $2 AND b = ANY($1)"
    assert statement.arguments({"name": "n", "ids": [1], "unused": 0}) == [[1], "n"]


async def test_a_rolled_back_transaction_keeps_nothing_the_driver_statements_wrote(repository_in) -> None:
    patient = {"resourceType": "Patient", "gender": "female"}
    with pytest.raises(RuntimeError):
        async with repository_in(write=True) as repository:
            await repository.create_many([(patient, "rolled-back")])
            await repository.lock("clinical:Patient/rolled-back")
            assert set(await repository.read_many("Patient", ["rolled-back"])) == {"rolled-back"}
            raise RuntimeError("the request failed after the insert")
    async with repository_in(write=False) as repository:
        assert await repository.read_many("Patient", ["rolled-back"]) == {}
        assert (await repository.history("Patient", "rolled-back")).total == 0


async def test_a_deadlock_is_a_transient_database_error_without_the_parameters(repository_in, backend) -> None:
    if backend != "postgres":
        # SQLite has one writer at a time (BEGIN IMMEDIATE): locks taken in crossing orders cannot deadlock.
        for mine, theirs in (("deadlock:a", "deadlock:b"), ("deadlock:b", "deadlock:a")):
            async with repository_in(write=True) as repository:
                await repository.lock(mine)
                await repository.lock(theirs)
        return
    first_holds, second_holds = asyncio.Event(), asyncio.Event()

    async def take(mine: str, theirs: str, holding: asyncio.Event, other: asyncio.Event) -> None:
        async with repository_in(write=True) as repository:
            await repository.lock(mine)
            holding.set()
            await other.wait()
            await repository.lock(theirs)  # each waits for the other: PostgreSQL ends one of them

    outcomes = await asyncio.wait_for(asyncio.gather(
        take("deadlock:a", "deadlock:b", first_holds, second_holds),
        take("deadlock:b", "deadlock:a", second_holds, first_holds),
        return_exceptions=True,
    ), 30)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1
    error = failures[0]
    assert isinstance(error, DBAPIError) and transient_reason(error) is not None
    assert getattr(error.orig, "sqlstate", None) == "40P01"
    assert "deadlock:" not in str(error) and "[SQL parameters hidden" in str(error)


async def test_reads_outside_a_write_send_nothing_but_the_read(repository_in, engine) -> None:
    """A read-only request runs in autocommit on PostgreSQL: there is no BEGIN to force."""
    async with repository_in(write=True) as repository:
        await repository.create_many([({"resourceType": "Patient", "gender": "male"}, "reader")])
    async with repository_in(write=False) as repository, statements_sent(engine, repository) as sent:
        assert await repository.exists("Patient", "reader")  # through SQLAlchemy, which "begins"
        assert set(await repository.read_many("Patient", ["reader", "nobody"])) == {"reader"}
        assert (await repository.read("Patient", "reader")).id == "reader"  # remembered
    assert len(sent) == 2, sent
