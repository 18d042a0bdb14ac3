"""`puente seed-demo`: a synthetic La Esperanza CHW programme, written through the repository."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from seed.generator import RESOURCES_PER_CHILD, Unit, children_for_resources, generate_units
from seed.load import load_units
from settings import Settings, get_settings
from storage import statistics
from storage.database import create_engine, transaction
from storage.migrations import upgrade_async
from storage.repository import FhirRepository
from wiring import write_subscribers

SEEDER = Principal(subject="puente-seed-demo", is_admin=True)


UnitWriter = Callable[[Unit], Awaitable[None]]


def unit_writer(engine: AsyncEngine, settings: Settings) -> UnitWriter:
    """Writes one household (or the programme) per transaction, through the repository."""
    subscribers = write_subscribers(settings)

    async def write_unit(unit: Unit) -> None:
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, SEEDER, subscribers=subscribers)
            repository.defer_hooks()  # the rules judge the household once, with all of it stored
            first = unit.resources[0]
            if await repository.exists(first["resourceType"], first["id"]):
                # ids are stable: a re-run updates instead of duplicating (units are written whole)
                for resource in unit.resources:
                    await repository.update(resource["resourceType"], resource["id"], resource)
            else:
                await repository.create_many([(resource, resource["id"]) for resource in unit.resources])
            await repository.run_deferred_hooks()

    return write_unit


async def bench_loader(units: Iterable[Unit], database_url: str) -> None:
    """`python -m bench.run --loader cli.seed_demo:bench_loader`: `seed-demo --no-derived`, for the benchmark.

    The generated history is loaded without the clinical rules (9 minutes instead of 25 for 1M
    resources); the server under test runs them on every write it measures.
    """
    settings = get_settings().model_copy(update={"database_url": database_url, "clinical_hooks": False})
    engine = create_engine(database_url, pool_size=4)
    try:
        started = time.perf_counter()

        def report(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            sys.stderr.write(f"  loaded {done:,} resources ({rate:,.0f}/s)\n")

        await load_units(units, unit_writer(engine, settings), concurrency=4, progress=_every(report, 50_000))
        await statistics.refresh(engine)
    finally:
        await engine.dispose()


def _every(report: Callable[[int], None], step: int) -> Callable[[int], None]:
    last = [0]

    def maybe(done: int) -> None:
        if done - last[0] >= step:
            last[0] = done
            report(done)

    return maybe


async def _seed(children: int, seed: int, derived: bool, concurrency: int) -> tuple[int, float]:
    settings = get_settings()
    if not derived:
        settings = settings.model_copy(update={"clinical_hooks": False})
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url, pool_size=concurrency)
    write_unit = unit_writer(engine, settings)
    started = time.perf_counter()
    columns = (TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns) as progress:
            task = progress.add_task("resources", total=round(children * RESOURCES_PER_CHILD))
            total = await load_units(
                generate_units(children, seed),
                write_unit,
                concurrency=concurrency,
                progress=lambda n: progress.update(task, completed=n),
            )
            progress.update(task, total=total, completed=total)
        await statistics.refresh(engine)  # a bulk load: the planner must see the new rows
    finally:
        await engine.dispose()
    return total, time.perf_counter() - started


def register(app: typer.Typer) -> None:
    @app.command("seed-demo")
    def seed_demo(
        children: Annotated[int, typer.Option(help="children under five (La Esperanza: ~1,300)")] = 1300,
        seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same programme")] = 1,
        derived: Annotated[bool, typer.Option(help="run the clinical rules on write (z-scores, flags)")] = True,
        concurrency: Annotated[int, typer.Option(help="households written in parallel")] = 4,
        resources: Annotated[
            int | None,
            typer.Option(help="size the cohort by resources instead (~32 per child): 1000000 for benchmarks"),
        ] = None,
    ) -> None:
        """Load a synthetic, realistic CHW programme (families, screenings, vaccines, referrals)."""
        if resources is not None:
            children = children_for_resources(resources)
        total, seconds = asyncio.run(_seed(children, seed, derived, concurrency))
        typer.echo(f"{total} resources in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f}/s)")
