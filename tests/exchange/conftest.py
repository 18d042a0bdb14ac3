"""The exchange tests: the auth tests' app (real keys, real tokens) and one with fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from storage import search_rows
from tests.auth.conftest import auth_app, http, jwks_server, rsa  # noqa: F401  (fixtures)
from tests.conftest import BASE, make_settings
from tests.exchange.clinic_sim import ClinicSimulator
from tests.fixtures.databases import empty_all_tables
from tests.storage.conftest import engine  # noqa: F401  (fixture: an engine on emptied tables)

# Retries in a fraction of a second instead of minutes: the schedule's shape, not its pace, is tested.
FAST = {"exchange_poll_seconds": 0.02, "exchange_backoff_seconds": 0.05, "exchange_backoff_max_seconds": 0.4,
        "exchange_timeout_seconds": 3.0, "exchange_workers": 2, "exchange_pull_seconds": 0.1}


@pytest.fixture(autouse=True)
def _search_base_url_as_it_was() -> object:
    """Creating an app sets the process-wide base URL that absolute references index by; the apps
    made here (other bases) must not leave theirs to the tests that run after these."""
    before = search_rows.base_url()
    yield
    search_rows.configure(base_url=before)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def exchange_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, **FAST))
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def fhir(exchange_app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """PUENTE_AUTH=off (the local administrator), over emptied databases."""
    await empty_all_tables(database_url)
    transport = httpx.ASGITransport(app=exchange_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def clinic() -> AsyncIterator[ClinicSimulator]:
    sim = ClinicSimulator()
    await sim.start()
    yield sim
    await sim.stop()
