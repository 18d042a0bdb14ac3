"""`puente export` and `puente import`: the whole data set to and from NDJSON, with a progress bar.

Both work on the database directly, as the server's administrator (like `seed-demo`), through the
same code as the HTTP API: exports are bulk jobs (bulk.runner) and imports go through the
repository and the Bundle processor. Both resume after an interruption when run again.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncConnection

from api.bundle_processor import process_bundle
from api.search_service import search_bundle
from auth.principal import Principal
from bulk import jobs
from bulk.importer import ErrorFile, Importer, count_lines, sources
from bulk.jobs import JobStore
from bulk.request import GROUP, PATIENT, SYSTEM, parse_export
from bulk.runner import ExportRunner, job_directory
from fhir_mappings.outcomes import FhirError
from settings import Settings, get_settings
from storage import statistics
from storage.database import create_engine
from storage.migrations import upgrade_async
from storage.repository import FhirRepository
from wiring import write_subscribers

OPERATOR = Principal(subject="puente-cli", is_admin=True)  # the operator at the console sees everything
STATE = ".puente-export"  # an unfinished export's job id and files, inside the output folder
CLI_LEASE_SECONDS = 5.0  # a rerun after a kill waits at most this long to take the job over


async def _export(out: Path, params: list[tuple[str, str]], level: str, group: str | None) -> dict[str, int]:
    settings = get_settings()
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url)
    store = JobStore(engine, lease_seconds=CLI_LEASE_SECONDS)
    state = out / STATE
    state.mkdir(parents=True, exist_ok=True)
    job_file = state / "job"
    try:
        job_id = job_file.read_text().strip() if job_file.exists() else None
        job = await store.get(job_id) if job_id else None
        if job is None or job.status not in (jobs.QUEUED, jobs.RUNNING):
            if group is not None:
                await _check_group(engine, group)
            request = parse_export(
                OPERATOR,
                level,
                params,
                request_url="puente export " + " ".join(f"{k}={v}" for k, v in params),
                prefer="respond-async",
                group_id=group,
            )
            job_id = await store.create(OPERATOR, request, console=True)
            job_file.write_text(job_id)
        assert job_id is not None
        counts: dict[str, int] = {}
        with Progress(TextColumn("exporting {task.fields[type]}"), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("export", total=None, type="")

            def on_page(resource_type: str, n: int) -> None:
                counts[resource_type] = counts.get(resource_type, 0) + n
                bar.update(task, advance=n, type=resource_type)

            runner = ExportRunner(store, engine, state, f"cli:{job_id[:8]}", on_page=on_page)
            claimed = await _claim(store, runner.worker, job_id)
            await runner.run(claimed)
        finished = await store.get(job_id)
        if finished is None or finished.status != jobs.COMPLETED:
            raise typer.Exit(_fail((finished.error if finished else None) or "the export job disappeared"))
        for file in job_directory(state, job_id).glob("*.ndjson"):
            shutil.move(file, out / file.name)
        shutil.rmtree(state)
        await store.remove(job_id)
        return {t: s["count"] for t, s in finished.progress.items() if isinstance(s, dict) and s.get("count")}
    finally:
        await engine.dispose()


async def _claim(store: JobStore, worker: str, job_id: str) -> jobs.Job:
    """This run's job, once no one else holds it (a killed earlier run's lease runs out first)."""
    for _ in range(int(CLI_LEASE_SECONDS * 10) + 50):
        job = await store.claim_job(job_id, worker)
        if job is not None:
            return job
        await asyncio.sleep(0.2)
    raise typer.Exit(_fail("another process is running this export"))


async def _check_group(engine: Any, group: str) -> None:
    async with engine.connect() as connection:
        repository = FhirRepository(connection, OPERATOR)
        await repository.read("Group", group)


def _fail(message: str) -> int:
    typer.echo(f"puente: {message}", err=True)
    return 1


async def _import(paths: list[Path], errors: Path, batch_size: int, derived: bool) -> tuple[int, int, int]:
    settings = get_settings()
    if not derived:
        settings = settings.model_copy(update={"clinical_hooks": False})
    await upgrade_async(settings.database_url)
    engine = create_engine(settings.database_url, pool_size=2)
    subscribers = write_subscribers(settings)

    def repository(connection: AsyncConnection) -> FhirRepository:
        return FhirRepository(connection, OPERATOR, subscribers=subscribers)

    files = [f for path in paths for f in sources(path)]
    error_file = ErrorFile(errors)
    try:
        total = sum(count_lines(f) if f.name.endswith(".ndjson") else 1 for f in files)
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("import", total=total)
            importer = Importer(
                engine,
                repository,
                error_file,
                write_bundle=_bundle_writer(settings),
                batch_size=batch_size,
                on_progress=lambda n: bar.update(task, advance=n),
            )
            for file in files:
                await importer.import_file(file)
        await statistics.refresh(engine)  # a bulk load: the planner must see the new rows
        counts = importer.counts
        return counts.stored, counts.refused, counts.skipped
    finally:
        error_file.close()
        await engine.dispose()


def _bundle_writer(settings: Settings) -> Any:
    search = functools.partial(search_bundle, settings=settings)

    async def write(repository: FhirRepository, bundle: dict[str, Any]) -> dict[str, Any]:
        return await process_bundle(
            repository,
            bundle,
            base_url=settings.public_base_url,
            max_entries=settings.max_bundle_entries,
            search=search,
        )

    return write


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        out: Annotated[Path, typer.Argument(help="folder for the NDJSON files (one per type)")],
        type_: Annotated[str | None, typer.Option("--type", help="types, comma-separated (default: all)")] = None,
        since: Annotated[str | None, typer.Option(help="only resources changed after this FHIR instant")] = None,
        type_filter: Annotated[
            list[str] | None,
            typer.Option(
                "--type-filter", help="a search such as 'Observation?code=http://loinc.org|718-7' (repeatable)"
            ),
        ] = None,
        elements: Annotated[str | None, typer.Option(help="elements to keep, comma-separated")] = None,
        patients: Annotated[bool, typer.Option(help="only patients' records (the Patient compartment)")] = False,
        group: Annotated[str | None, typer.Option(help="only the records of this Group's patients")] = None,
    ) -> None:
        """Export the data set (or patients' records) to NDJSON files; run again to resume after a kill."""
        params = [(k, v) for k, v in (("_type", type_), ("_since", since), ("_elements", elements)) if v]
        params += [("_typeFilter", f) for f in type_filter or []]
        level = GROUP if group else PATIENT if patients else SYSTEM
        try:
            counts = asyncio.run(_export(out, params, level, group))
        except FhirError as exc:
            raise typer.Exit(_fail(exc.diagnostics)) from exc
        typer.echo(f"exported {sum(counts.values()):,} resources of {len(counts)} types to {out}")

    @app.command("import")
    def import_(
        paths: Annotated[list[Path], typer.Argument(help="NDJSON files, Bundle JSON files, or folders of them")],
        errors: Annotated[Path, typer.Option(help="NDJSON of OperationOutcomes for what was refused")] = Path(
            "puente-import-errors.ndjson"
        ),
        batch_size: Annotated[int, typer.Option(help="lines per transaction")] = 500,
        derived: Annotated[bool, typer.Option(help="run the clinical rules on write (z-scores, flags)")] = True,
    ) -> None:
        """Import NDJSON and Bundles through the API's write path; run again to resume after a kill.

        Exits 1 when anything was refused (listed, with file and line, in the error file)."""
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise typer.Exit(_fail(f"not found: {', '.join(missing)}"))
        stored, refused, skipped = asyncio.run(_import(paths, errors, batch_size, derived))
        resumed = f" ({skipped:,} already imported by an earlier run)" if skipped else ""
        typer.echo(
            f"imported {stored:,} resources{resumed}; refused {refused:,}" + (f": see {errors}" if refused else "")
        )
        if refused:
            raise typer.Exit(1)
