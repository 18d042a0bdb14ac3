"""Shared fixtures: every storage and API test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from settings import Settings
from tests.fixtures.databases import empty_all_tables, fresh_database, skip_postgres


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A skipped test is a failed one: whatever it needs (data, tools, a database) must be there, or
    the run says so loudly instead of passing with less tested than it claims."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and this suite allows no skips: {report.longrepr}"


BACKENDS = ["sqlite"] if skip_postgres() else ["sqlite", "postgres"]
BASE = "http://testserver"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_database(backend, Path(tmp_path_factory.mktemp(backend))) as url:
        yield url


LOOPBACK_RECEIVERS = "127.0.0.1"

# The apps of one session serve the same databases, so they share one data directory (export files,
# signing keys), as every process serving one database must (README, bulk export). Outside the
# checkout: with the default, ./.puente, a test's export job claimed by the session app's worker left
# its file in the clone's working tree (tests/bulk/test_crash.py, session 16).
SESSION_DATA_DIR = Path(tempfile.mkdtemp(prefix="puente-tests-"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DATA_DIR, ignore_errors=True)


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Every app of the session may deliver any subscription's outbox and push any partner's (they
    # share the database), so all of them retry at the tests' pace and time out alike: an event a
    # slower app's worker claimed would otherwise wait out minutes of production backoff. The
    # tests' receivers listen on loopback, which the endpoint policy refuses unless listed.
    values: dict[str, object] = {"database_url": database_url, "auth": "off", "base_url": BASE,
                                 "data_dir": SESSION_DATA_DIR,
                                 "subscription_endpoints": LOOPBACK_RECEIVERS, "exchange_backoff_seconds": 0.05,
                                 "exchange_backoff_max_seconds": 0.4, "exchange_timeout_seconds": 3.0,
                                 **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def client(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real app over a real, emptied database."""
    await empty_all_tables(database_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Accept": "application/fhir+json"}) as c:
        yield c
