"""Bulk data tests: the auth-on app over real databases, with real backend-services tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from joserfc.jwk import RSAKey
from sqlalchemy import delete

from bulk.tables import metadata as bulk_metadata
from storage.database import create_engine
from tests.auth import support
from tests.auth.conftest import auth_app, http, jwks_server, rsa  # noqa: F401  (fixtures, reused)


async def empty_bulk_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in bulk_metadata.sorted_tables:
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def bulk_http(http: httpx.AsyncClient, database_url: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    await empty_bulk_tables(database_url)
    yield http


class Clients:
    """Registers backend-services clients and gets them tokens, as SMART's bulk-data-client does."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, key: RSAKey) -> None:
        self.app, self.http, self.key = app, client, key

    async def token(self, scopes: str, **registration: Any) -> str:
        client_id, _ = await support.register(self.app, scopes=scopes, keys=(self.key,), **registration)
        return await support.access_token(self.http, client_id, self.key, scopes)


@pytest_asyncio.fixture(loop_scope="session")
async def clients(auth_app: FastAPI, bulk_http: httpx.AsyncClient, rsa: RSAKey) -> Clients:  # noqa: F811
    return Clients(auth_app, bulk_http, rsa)
