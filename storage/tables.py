"""The database schema: current resources, their history, and one search-index table per parameter type.

Designed for millions of resources on PostgreSQL:
- every row has a bigint surrogate key (`pk`), so index tables stay narrow and joins are on integers;
- the resource body is stored as the exact JSON text we serve (no re-serialisation on read);
- index rows carry `resource_type` and `param` first in their indexes, so one parameter of one type
  is one contiguous index range (and tables can later be partitioned by `resource_type`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming_convention)

# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)

resources = Table(
    "resources",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Timestamp, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    # Who wrote the first version ("Practitioner/P", "Organization/O" or "Client/C"; None: the server
    # or an administrator): an author may always see and match its own writes (storage.access).
    Column("created_by", String(128), nullable=True),
    UniqueConstraint("resource_type", "id"),
    Index("ix_resources_type_updated", "resource_type", "last_updated", "pk"),
    Index("ix_resources_updated", "last_updated", "pk"),
    Index(
        "ix_resources_created_by",
        "resource_type",
        "created_by",
        "pk",
        postgresql_where=text("created_by IS NOT NULL"),
        sqlite_where=text("created_by IS NOT NULL"),
    ),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    # No foreign key: history is only written by the statement that writes or locks the resource
    # row, and resources rows are never removed (migration 0007).
    Column("resource_pk", BigId, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Timestamp, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    # Who wrote this version: the author as in resources.created_by, the OAuth client, the signed-in user.
    Column("author", String(128), nullable=True),
    Column("author_client", String(64), nullable=True),
    Column("author_user", String(128), nullable=True),
    UniqueConstraint("resource_type", "id", "version_id"),
    Index("ix_resource_history_type_updated", "resource_type", "last_updated", "pk"),
    Index("ix_resource_history_updated", "last_updated", "pk"),
)


def _index_table(
    name: str, *columns: Column, value_indexes: list[tuple[str, ...]], prefix_searched: tuple[str, ...] = ()
) -> Table:
    """`prefix_searched` columns are matched with LIKE 'abc%' too: on PostgreSQL their index uses
    varchar_pattern_ops, which serves prefixes (and equality) whatever the database's collation."""
    table = Table(
        name,
        metadata,
        # No foreign key: index rows are derived (`puente reindex` rebuilds them) and are only ever
        # written joined to their resource row in the same statement; a key check per row was 40 % of
        # PostgreSQL's CPU for a household visit (migration 0005).
        Column("resource_pk", BigId, nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
        Index(f"ix_{name}_resource", "resource_pk"),
    )
    for i, cols in enumerate(value_indexes):
        ops = {c: "varchar_pattern_ops" for c in cols if c in prefix_searched}
        dialect_options: dict[str, Any] = {"postgresql_ops": ops} if ops else {}
        Index(
            f"ix_{name}_value{i}",
            table.c.resource_type,
            table.c.param,
            *(table.c[c] for c in cols),
            table.c.resource_pk,
            **dialect_options,
        )
    return table


search_token = _index_table(
    "search_token",
    Column("system", String(512), nullable=True),
    Column("code", String(512), nullable=True),
    Column("text", String(512), nullable=True),
    Column("type_system", String(512), nullable=True),  # Identifier.type, for :of-type
    Column("type_code", String(128), nullable=True),
    value_indexes=[("code", "system")],
)

search_string = _index_table(
    "search_string",
    Column("value", String(512), nullable=False),
    Column("value_exact", String(512), nullable=False),
    value_indexes=[("value",)],
    prefix_searched=("value",),  # the default string search is starts-with
)

search_date = _index_table(
    "search_date",
    Column("low", Timestamp, nullable=True),
    Column("high", Timestamp, nullable=True),
    value_indexes=[("low",), ("high",)],
)

search_reference = _index_table(
    "search_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("target_version", String(64), nullable=True),
    Column("url", String(1024), nullable=True),
    Column("identifier_system", String(512), nullable=True),  # Reference.identifier, for :identifier
    Column("identifier_value", String(512), nullable=True),
    value_indexes=[("target_id", "target_type")],
)
# _revinclude and reverse chains go from the target to the referrers.
Index("ix_search_reference_target", search_reference.c.target_type, search_reference.c.target_id)
# Canonical and external references (QuestionnaireResponse?questionnaire=http://...) and :identifier
# searches; partial, so the many plain local references pay nothing for them.
Index(
    "ix_search_reference_url",
    search_reference.c.resource_type,
    search_reference.c.param,
    search_reference.c.url,
    search_reference.c.resource_pk,
    postgresql_where=search_reference.c.url.is_not(None),
    sqlite_where=search_reference.c.url.is_not(None),
)
Index(
    "ix_search_reference_identifier",
    search_reference.c.resource_type,
    search_reference.c.param,
    search_reference.c.identifier_value,
    search_reference.c.resource_pk,
    postgresql_where=search_reference.c.identifier_value.is_not(None),
    sqlite_where=search_reference.c.identifier_value.is_not(None),
)

# A deleted resource's references, kept so that whoever could see it still sees it was deleted (a
# read answers 410, its history shows the deletion, a CHW app or clinic syncs it). Only the final step
# of an access rule reads these; grants (a referral showing a clinic its patient) use live rows only.
deleted_reference = Table(
    "deleted_reference",
    metadata,
    Column("resource_pk", BigId, nullable=False),  # no foreign key, as for the index tables
    Column("resource_type", String(64), nullable=False),
    Column("param", String(100), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Index("ix_deleted_reference_resource", "resource_pk"),
    Index("ix_deleted_reference_value", "resource_type", "param", "target_id", "target_type", "resource_pk"),
)

# A Quantity is a point (low == high); a Range of quantities has two ends, either of which may be open.
search_quantity = _index_table(
    "search_quantity",
    Column("low", Numeric(), nullable=True),
    Column("high", Numeric(), nullable=True),
    Column("system", String(512), nullable=True),
    Column("code", String(128), nullable=True),
    Column("unit", String(128), nullable=True),
    Column("canonical_code", String(128), nullable=True),
    Column("canonical_low", Numeric(), nullable=True),
    Column("canonical_high", Numeric(), nullable=True),
    value_indexes=[("code", "low"), ("canonical_code", "canonical_low")],
)

search_number = _index_table(
    "search_number",
    Column("low", Numeric(), nullable=True),
    Column("high", Numeric(), nullable=True),
    value_indexes=[("low",)],
)

search_uri = _index_table(
    "search_uri",
    Column("value", String(1024), nullable=False),
    value_indexes=[("value",)],
    prefix_searched=("value",),  # :below
)

# A composite parameter's combinations (e.g. Observation code-value-quantity taken from one
# component): `component` is the JSON of the combination's component values, `key` the first
# component's code (the selective part) to find candidates by index.
search_composite = _index_table(
    "search_composite",
    Column("key", String(512), nullable=True),
    Column("component", Text, nullable=False),
    value_indexes=[("key",)],
)

SEARCH_TABLES: dict[str, Table] = {
    "token": search_token,
    "string": search_string,
    "date": search_date,
    "reference": search_reference,
    "quantity": search_quantity,
    "number": search_number,
    "uri": search_uri,
    "composite": search_composite,
}
