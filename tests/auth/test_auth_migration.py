"""The 0002 migration creates exactly the tables auth.tables describes, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from auth.tables import metadata as auth_metadata
from storage.database import create_engine


async def test_migrated_auth_tables_match_their_definition(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                              auth_metadata)
            )
    finally:
        await engine.dispose()
    ours = [d for d in diff if "auth_" in repr(d)]
    assert ours == []
