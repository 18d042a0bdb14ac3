"""An app with PUENTE_AUTH=on over the real SQLite / PostgreSQL databases, and real keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import delete

from api import services
from api.app import create_app
from auth.tables import metadata as auth_metadata
from storage.database import create_engine
from tests.auth import support
from tests.conftest import make_settings
from tests.fixtures.databases import empty_all_tables


class JwksServer:
    """Client JWKS URLs, answered by httpx.MockTransport: the network is faked at its edge."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self.fetches: list[str] = []

    def publish(self, url: str, jwks: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.documents[url] = (jwks, headers or {})

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.fetches.append(url)
        if url not in self.documents:
            return httpx.Response(404)
        jwks, headers = self.documents[url]
        return httpx.Response(200, json=jwks, headers=headers)


@pytest.fixture(scope="session")
def jwks_server() -> JwksServer:
    return JwksServer()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def auth_app(database_url: str, jwks_server: JwksServer) -> AsyncIterator[FastAPI]:
    # The session's data directory (make_settings), not one of its own: the session app's export
    # worker polls the same database and may claim a job kicked off here, and this app must then
    # find its files, as every process serving one database must (a CI run failed on a manifest
    # whose files this app could not find).
    settings = make_settings(database_url, auth="on", base_url=support.BASE)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        fake_network = httpx.MockTransport(jwks_server.handler)
        services.of_app(application).auth_service().server.client_keys.http = httpx.Client(transport=fake_network)
        yield application


async def empty_auth_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(auth_metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def http(auth_app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the auth-on app, over emptied databases (resources and auth records)."""
    await services.of_app(auth_app).audit.flush()
    await empty_all_tables(database_url)
    await empty_auth_tables(database_url)
    services.of_app(auth_app).auth_parts().throttle.reset()  # each test starts with no rate-limit counts or lockouts
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url=support.BASE) as client:
        yield client
    await services.of_app(auth_app).audit.flush()


@pytest.fixture(scope="session")
def rsa() -> RSAKey:
    return support.rsa_key("rsa-1")


@pytest.fixture(scope="session")
def rsa_other() -> RSAKey:
    """Another key under the same kid: what a forger without the private key would have."""
    return support.rsa_key("rsa-1")


@pytest.fixture(scope="session")
def ec() -> ECKey:
    return support.ec_key("ec-1")


@pytest.fixture
def admin_token(auth_app: FastAPI) -> Callable[[], str]:
    def make() -> str:
        return support.sign_access_token(auth_app, support.token_claims())

    return make
