"""A read by id outside a write goes to the driver directly, on both databases (the asyncpg twin on
PostgreSQL; on SQLite, its SQLAlchemy-compiled text on the sqlite3 connection, storage.sqlite_sql):
one statement, none through SQLAlchemy's execution, and the same answers, missing and deleted
resources included. On SQLite it still starts the time budget SQLAlchemy's begin would have."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from auth.principal import LOCAL_EXPLORER
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Gone, NotFound
from storage import time_budget
from storage.database import create_engine, transaction
from storage.repository import FhirRepository
from tests.storage.conftest import statements_sent


@contextmanager
def _through_sqlalchemy(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_read_by_id_is_one_statement_at_the_driver(repository_in, engine):
    async with repository_in(write=True) as repository:
        for pid in ("ana", "gone"):
            patient = {"resourceType": "Patient", "id": pid, "name": [{"family": "Quispe"}]}
            await repository.update("Patient", pid, patient)
        await repository.delete("Patient", "gone")
    async with repository_in(write=False) as repository:
        with _through_sqlalchemy(engine.sync_engine) as sqlalchemy:
            async with statements_sent(engine, repository) as sent:
                found = await repository.read("Patient", "ana")
            assert fhir_json.loads(found.content or "{}")["name"] == [{"family": "Quispe"}]
            assert (found.version_id, found.deleted, found.last_updated.tzinfo is not None) == (1, False, True)
            assert len([s for s in sent if "FROM resources" in s]) == 1, sent
            with pytest.raises(NotFound):
                await repository.read("Patient", "nobody")
            with pytest.raises(Gone) as gone:
                await repository.read("Patient", "gone")
            assert gone.value.headers["ETag"] == 'W/"2"'
        assert sqlalchemy == []


async def test_a_read_by_id_starts_its_own_time_budget(database_url, backend):
    if backend != "sqlite":
        return  # PostgreSQL's budget is the connection's statement_timeout: nothing to start
    engine = create_engine(database_url, pool_size=1, time_budget=0.2)
    try:
        async with transaction(engine, write=False) as connection:  # an earlier read left its deadline behind
            await FhirRepository(connection, LOCAL_EXPLORER).read_many("Patient", ["a", "b"])
            budget = time_budget.of(await connection.get_raw_connection())
            assert budget is not None
        await asyncio.sleep(0.3)
        assert budget.deadline < time.monotonic()
        async with transaction(engine, write=False) as connection:
            with pytest.raises(NotFound):
                await FhirRepository(connection, LOCAL_EXPLORER).read("Patient", "never-written")
            assert budget.deadline > time.monotonic()  # the same pooled connection, its budget restarted
    finally:
        await engine.dispose()
