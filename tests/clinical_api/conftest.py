"""Clients on an app built with given environment variables (PUENTE_CLINICAL_HOOKS, PUENTE_DEFAULT_ALTITUDE_M)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from tests.conftest import BASE, make_settings
from tests.fixtures.databases import empty_all_tables

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def client_with_env(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ClientFactory]:
    await empty_all_tables(database_url)
    async with AsyncExitStack() as stack:

        async def make(**environ: str) -> httpx.AsyncClient:
            for key, value in environ.items():
                monkeypatch.setenv(key, value)
            application = create_app(make_settings(database_url))
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE))

        yield make

