"""An app configured as a deployment behind browsers would be: CORS for one web app's origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from tests.conftest import BASE, make_settings
from tests.fixtures.databases import empty_all_tables, fresh_database

WEB_APP = "https://chw-app.example.org"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One SQLite database for the browser tests: what they check is the browser's side, the same on
    either database, and a browser run is slow enough to do once."""
    async with fresh_database("sqlite", Path(tmp_path_factory.mktemp("browser"))) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def edges_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, cors_origins=f"{WEB_APP}, https://panel.example.org"))
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def http(edges_app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await empty_all_tables(database_url)
    transport = httpx.ASGITransport(app=edges_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c
