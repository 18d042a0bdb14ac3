"""Migration 0009 creates exactly the tables bulk.tables describes, on SQLite and PostgreSQL; the
compartment table is the HL7 one."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bulk.compartment import compartment_params
from bulk.tables import metadata as bulk_metadata
from storage.database import create_engine


async def test_migrated_bulk_tables_match_their_definition(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), bulk_metadata
                )
            )
    finally:
        await engine.dispose()
    assert [d for d in diff if "bulk_" in repr(d)] == []


def test_the_patient_compartment_is_r4s():
    params = compartment_params()
    assert len(params) == 66 + 1  # R4 4.0.1: 66 types besides Patient itself
    assert params["Observation"] == ("performer", "subject")
    assert params["Patient"] == ("link",)
    assert "Organization" not in params and "Practitioner" not in params
