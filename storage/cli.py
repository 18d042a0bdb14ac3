"""`puente reindex`: rebuild every search-index row from the stored resources, with a progress bar.

Needed after the search definitions change (a new registry, a fixed extractor). The references a
deleted resource keeps for access checks (`deleted_reference`) are recomputed too, from its last
version before the deletion. Resources are
reindexed in batches of `--batch-size`, each in its own transaction with the batch's rows locked, so
the server can keep running: a write that lands meanwhile indexes itself, and is never overwritten
with rows from an older version.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_mappings import fhir_json
from storage import search_rows, statistics, version_writes
from storage.database import create_engine, transaction
from storage.tables import SEARCH_TABLES, deleted_reference, resource_history, resources

# The same defaults as settings.Settings (storage may not import settings): keep them in step.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./puente.db"


def public_base_url(base_url: str | None) -> str:
    """As Settings.public_base_url: PUENTE_BASE_URL (or http://PUENTE_HOST:PUENTE_PORT) ending in /fhir."""
    root = base_url or f"http://{os.environ.get('PUENTE_HOST', '127.0.0.1')}:{os.environ.get('PUENTE_PORT', '8000')}"
    root = root.rstrip("/")
    return root if root.endswith("/fhir") else f"{root}/fhir"


async def rebuild(
    engine: AsyncEngine,
    *,
    base_url: str | None,
    batch_size: int = 500,
    resource_types: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replace the index rows of every current resource (of `resource_types`, or all); returns how many.

    `progress(done, total)` is called after each batch.
    """
    r = resources
    chosen = [r.c.deleted.is_(False)]
    if resource_types:
        chosen.append(r.c.resource_type.in_(list(resource_types)))
    async with transaction(engine, write=True) as connection:
        total = int((await connection.execute(select(func.count()).select_from(r).where(*chosen))).scalar_one())
        if not resource_types:  # rows left behind by deletions, if any
            gone = select(r.c.pk).where(r.c.deleted.is_(True))
            for table in SEARCH_TABLES.values():
                await connection.execute(delete(table).where(table.c.resource_pk.in_(gone)))
    done, last_pk = 0, 0
    if progress:
        progress(0, total)
    while True:
        async with transaction(engine, write=True) as connection:
            statement = (
                select(r.c.pk, r.c.resource_type, r.c.content)
                .where(*chosen, r.c.pk > last_pk)
                .order_by(r.c.pk)
                .limit(batch_size)
            )
            if connection.dialect.name == "postgresql":
                statement = statement.with_for_update()  # a concurrent update waits, then reindexes itself
            batch = (await connection.execute(statement)).all()
            if not batch:
                break
            pks = [row.pk for row in batch]
            items = [(row.pk, row.resource_type, fhir_json.loads_stored(row.content) if row.content else None)
                     for row in batch]
            await version_writes.replace_index_rows(connection, items, stale=pks, base_url=base_url)
        last_pk = pks[-1]
        done += len(batch)
        if progress:
            progress(done, max(total, done))
    await _rebuild_deleted_references(engine, base_url=base_url, batch_size=batch_size, resource_types=resource_types)
    await statistics.refresh(engine)  # every index row is new to the planner
    return done


async def _rebuild_deleted_references(
    engine: AsyncEngine, *, base_url: str | None, batch_size: int, resource_types: Sequence[str]
) -> None:
    """Recompute the references each deleted resource keeps (`deleted_reference`: whoever could see it
    sees it was deleted), from its last version before the deletion, with today's definitions."""
    r, h = resources, resource_history
    chosen = [r.c.deleted.is_(True)]
    if resource_types:
        chosen.append(r.c.resource_type.in_(list(resource_types)))
    columns = [c.name for c in deleted_reference.columns]
    later = h.alias("later")
    last_live = ~select(later.c.pk).where(
        later.c.resource_pk == h.c.resource_pk, later.c.deleted.is_(False), later.c.version_id > h.c.version_id
    ).exists()
    last_pk = 0
    while True:
        async with transaction(engine, write=True) as connection:
            statement = select(r.c.pk).where(*chosen, r.c.pk > last_pk).order_by(r.c.pk).limit(batch_size)
            if connection.dialect.name == "postgresql":
                statement = statement.with_for_update()  # a resource re-created meanwhile waits for us
            pks = list((await connection.execute(statement)).scalars())
            if not pks:
                return
            await connection.execute(delete(deleted_reference).where(deleted_reference.c.resource_pk.in_(pks)))
            versions = await connection.execute(
                select(h.c.resource_pk, h.c.resource_type, h.c.content).where(
                    h.c.resource_pk.in_(pks), h.c.deleted.is_(False), last_live
                )
            )
            kept = [
                {name: row[name] for name in columns}
                for version in versions
                if version.content is not None
                for row in search_rows.index_rows(
                    version.resource_pk, version.resource_type, fhir_json.loads_stored(version.content),
                    base_url=base_url,
                ).get("reference", ())
            ]
            if kept:
                await connection.execute(insert(deleted_reference), kept)
        last_pk = pks[-1]


def register(app: typer.Typer) -> None:
    @app.command()
    def reindex(
        database_url: Annotated[
            str, typer.Option(envvar="PUENTE_DATABASE_URL", help="SQLAlchemy URL")
        ] = DEFAULT_DATABASE_URL,
        base_url: Annotated[
            str | None,
            typer.Option(envvar="PUENTE_BASE_URL", help="public URL: absolute references to it index as local"),
        ] = None,
        batch_size: Annotated[int, typer.Option(min=1, help="resources per transaction")] = 500,
        resource_type: Annotated[
            list[str] | None, typer.Option("--type", help="only this resource type (repeatable)")
        ] = None,
    ) -> None:
        """Rebuild the search indexes of every stored resource (after the search definitions change)."""
        columns = (
            TextColumn("reindexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as bar:
            task = bar.add_task("reindex", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async def run() -> int:
                engine = create_engine(database_url)
                try:
                    return await rebuild(
                        engine,
                        base_url=public_base_url(base_url),
                        batch_size=batch_size,
                        resource_types=resource_type or (),
                        progress=advance,
                    )
                finally:
                    await engine.dispose()

            count = asyncio.run(run())
        typer.echo(f"reindexed {count} resources")
