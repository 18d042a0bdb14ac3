"""One Alembic lineage builds exactly the schema the code declares, on SQLite and PostgreSQL, and can go back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from auth.tables import metadata as auth_metadata
from bulk.tables import metadata as bulk_metadata
from storage.database import create_engine
from storage.migrations import current_revision, head_revision, upgrade_async
from storage.tables import metadata as storage_metadata


def _drift(sync_connection) -> list:
    """Differences between the migrated database and the packages' table declarations."""
    context = MigrationContext.configure(sync_connection)
    packages = (storage_metadata, auth_metadata, bulk_metadata)
    declared = {name for metadata in packages for name in metadata.tables} | {"alembic_version"}
    diffs = []
    for metadata in packages:
        for diff in compare_metadata(context, metadata):
            table = _table_of(diff)
            if table not in metadata.tables and table in declared:
                continue  # the other package's table
            diffs.append(diff)
    return diffs


def _table_of(diff) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        table = getattr(part, "table", None)
        if table is not None:
            return table.name
        name = getattr(part, "name", None)
        if isinstance(part, object) and hasattr(part, "columns") and name:
            return name
    return None


async def test_migrated_schema_matches_the_tables(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_drift)
            revision = await connection.run_sync(current_revision)
    finally:
        await engine.dispose()
    assert diff == []
    assert revision == head_revision()


async def test_downgrade_to_base_and_up_again(backend, tmp_path):
    from tests.fixtures.databases import fresh_database

    async with fresh_database(backend, tmp_path) as url:
        await upgrade_async(url, "base", downgrade=True)
        await upgrade_async(url, "head")
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                assert await connection.run_sync(current_revision) == head_revision()
        finally:
            await engine.dispose()
