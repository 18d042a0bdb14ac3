"""Export jobs shared by several processes through the database: one claim wins, a lease that runs
out passes the job on (and the old worker learns it at its next checkpoint), a job that keeps
dying is given up, a console's job stays the console's."""

from __future__ import annotations

import asyncio

import pytest_asyncio

from auth.principal import Principal
from bulk import jobs
from bulk.jobs import JobStore
from bulk.request import SYSTEM, parse_export
from bulk.worker import ExportWorker
from storage.database import create_engine
from tests.fixtures.databases import fresh_database

ADMIN = Principal(subject="integrator", client_id="integrator", scopes=frozenset({"system/*.rs"}), is_admin=True)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(backend, tmp_path):
    """A database of the test's own: the suite's app lives for the whole session, and its export
    worker would take these jobs too."""
    async with fresh_database(backend, tmp_path) as url:
        engine = create_engine(url)
        yield engine
        await engine.dispose()


async def _job(store: JobStore) -> str:
    request = parse_export(ADMIN, SYSTEM, [("_type", "Patient")], request_url="test", prefer="respond-async")
    return await store.create(ADMIN, request)


async def test_two_workers_claiming_at_once_get_the_job_once(engine):
    store = JobStore(engine)
    job_id = await _job(store)
    claims = await asyncio.gather(*(store.claim(f"worker-{n}") for n in range(4)))
    won = [c for c in claims if c is not None]
    assert [c.id for c in won] == [job_id]
    assert won[0].principal == ADMIN and won[0].request.types == ("Patient",)
    assert not await store.claimable()


async def test_a_lease_that_runs_out_passes_the_job_on(engine):
    # Two seconds: a busy machine must not let the lease run out before the "still leased" check.
    store = JobStore(engine, lease_seconds=2)
    job_id = await _job(store)
    first = await store.claim("dead-worker")
    assert first is not None and first.attempts == 1
    assert await store.claim("other") is None  # still leased
    await asyncio.sleep(2.5)
    second = await store.claim("other")
    assert second is not None and second.id == job_id and second.attempts == 2
    assert not await store.checkpoint(job_id, "dead-worker", {})  # it has lost the job: it stops
    assert await store.checkpoint(job_id, "other", {"Patient": {"count": 1}})


async def test_a_job_that_keeps_dying_fails_and_a_cancelled_one_stops_its_worker(engine):
    store = JobStore(engine, lease_seconds=0.05)
    job_id = await _job(store)
    for n in range(jobs.MAX_ATTEMPTS):
        assert await store.claim(f"w{n}") is not None
        await asyncio.sleep(0.1)
    assert await store.claim("last") is None
    failed = await store.get(job_id)
    assert failed is not None and failed.status == jobs.FAILED and "interrupted" in (failed.error or "")

    other = await _job(store)
    assert await store.claim("w") is not None
    await store.cancel(other)
    assert not await store.checkpoint(other, "w", {})
    assert other in await store.expired()


async def test_a_console_export_is_left_to_the_console_even_after_its_lease_runs_out(engine, tmp_path):
    """`puente export` against a database that servers also serve: their workers must not run the
    console's job (its files would go to a server's directory, and the console would wait for a job
    it can no longer claim)."""
    store = JobStore(engine, lease_seconds=0.05)
    request = parse_export(ADMIN, SYSTEM, [("_type", "Patient")], request_url="puente export", prefer="respond-async")
    job_id = await store.create(ADMIN, request, console=True)
    server = ExportWorker(engine, tmp_path / "server", lease_seconds=0.05)
    assert not await store.claimable() and await store.claim("server") is None
    await server.run_pending()
    queued = await store.get(job_id)
    assert queued is not None and queued.status == jobs.QUEUED and queued.owner == jobs.CONSOLE_OWNER

    first_run = await store.claim_job(job_id, "cli:first")
    assert first_run is not None and first_run.status == jobs.RUNNING
    await asyncio.sleep(0.1)  # the console was killed: its lease runs out
    await server.run_pending()
    assert await store.claim("server") is None and not (tmp_path / "server").exists()
    rerun = await store.claim_job(job_id, "cli:second")  # the same command, run again, resumes it
    assert rerun is not None and rerun.attempts == 2
