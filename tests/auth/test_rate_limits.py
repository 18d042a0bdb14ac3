"""Brute force on the authorization server (issue 16): real logins and token requests, real audit records.

An app of its own with small limits and a short lockout, over the session's real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from api.app import create_app
from tests.auth import support
from tests.auth.conftest import empty_auth_tables
from tests.auth.support import REDIRECT, add_user, login, register
from tests.conftest import make_settings
from tests.fixtures.databases import empty_all_tables

LOCKOUT = 1.0


@pytest_asyncio.fixture(loop_scope="session")
async def strict_app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    await empty_all_tables(database_url)
    await empty_auth_tables(database_url)
    settings = make_settings(
        database_url, auth="on", data_dir=tmp_path, base_url=support.BASE,
        auth_rate_per_minute=8, auth_client_failures_per_minute=3,
        login_failures_before_lockout=3, login_lockout_seconds=LOCKOUT, login_lockout_max_seconds=60,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(loop_scope="session")
async def http(strict_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url=support.BASE) as client:
        yield client


async def audit_statuses(app: FastAPI, http: httpx.AsyncClient, endpoint: str) -> list[str]:
    await app.state.audit.flush()
    token = support.sign_access_token(app, support.token_claims())
    found = await http.get("/fhir/AuditEvent", params={"_count": 200}, headers=support.bearer(token))
    assert found.status_code == 200, found.text
    return [
        e["resource"]["outcomeDesc"] for e in found.json().get("entry", [])
        if e["resource"].get("subtype", [{}])[0].get("code") == endpoint
    ]


async def test_wrong_passwords_lock_the_account_with_a_growing_delay(strict_app, http):
    client_id, _ = await register(strict_app, scopes="user/*.cruds", public=True, redirect_uris=(REDIRECT,))
    await add_user(strict_app, "rosa", "Practitioner/chw-1")
    for _ in range(2):
        response, _ = await login(http, client_id, "rosa", password="guess")
        assert response.status_code == 401
    response, _ = await login(http, client_id, "rosa", password="guess")  # the third: locked
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "bloqueada" in response.text  # the login page speaks Spanish (api/login_text.py)
    # while locked even the right password is not checked
    response, _ = await login(http, client_id, "rosa")
    assert response.status_code == 429
    await asyncio.sleep(LOCKOUT + 0.2)
    response, _ = await login(http, client_id, "rosa", password="guess")  # one more: twice as long
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 2
    await asyncio.sleep(2 * LOCKOUT + 0.2)
    response, _ = await login(http, client_id, "rosa")
    assert response.status_code == 302, response.text  # the right password, after the delay, logs in
    # another account is not affected by rosa's lockout
    await add_user(strict_app, "ana", "Practitioner/chw-2")
    strict_app.state.auth_throttle.reset()  # (the address limit is not what this case is about)
    response, _ = await login(http, client_id, "ana")
    assert response.status_code == 302
    statuses = await audit_statuses(strict_app, http, "authorize")
    assert statuses.count("HTTP 429") == 3 and statuses.count("HTTP 401") == 2, statuses


async def test_bad_client_secrets_are_throttled_per_client(strict_app, http):
    client_id, secret = await register(strict_app, scopes="system/Patient.rs", secret=True)
    assert secret is not None
    statuses = []
    for _ in range(5):
        response = await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "bad"))
        statuses.append(response.status_code)
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "throttled"
    # even the right secret waits: the attacker cannot tell it found it
    right = await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert right.status_code == 429
    # another client is not throttled by this one's failures
    other_id, other_secret = await register(strict_app, scopes="system/Patient.rs", secret=True)
    assert other_secret is not None
    ok = await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(other_id, other_secret))
    assert ok.status_code == 200, ok.text
    assert (await audit_statuses(strict_app, http, "token")).count("HTTP 429") == 3


async def test_introspection_is_throttled_per_address(strict_app, http):
    client_id, secret = await register(strict_app, scopes="system/Patient.rs", secret=True)
    assert secret is not None
    statuses = []
    for _ in range(10):
        response = await http.post("/auth/introspect", data={"token": "x"}, auth=(client_id, secret))
        statuses.append(response.status_code)
    assert statuses[:8] == [200] * 8 and statuses[8:] == [429, 429], statuses
    assert int(response.headers["retry-after"]) >= 1
    # other endpoints count on their own
    token = await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert token.status_code == 200


@pytest.mark.parametrize("metrics_token", [None, "scrape-me"])
async def test_metrics_need_an_admin_or_the_metrics_token(database_url, tmp_path, metrics_token):
    settings = make_settings(database_url, auth="on", data_dir=tmp_path, base_url=support.BASE,
                             metrics_token=metrics_token)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=support.BASE) as http:
            assert (await http.get("/metrics")).status_code == 401
            user_token = support.sign_access_token(app, support.token_claims(
                puente_admin=None, scope="system/Patient.rs"))
            assert (await http.get("/metrics", headers=support.bearer(user_token))).status_code in (401, 403)
            admin = support.sign_access_token(app, support.token_claims())
            scraped = await http.get("/metrics", headers=support.bearer(admin))
            assert scraped.status_code == 200 and "puente_http_requests_total" in scraped.text
            wrong = await http.get("/metrics", headers=support.bearer("not-the-token"))
            assert wrong.status_code == 401
            if metrics_token:
                assert (await http.get("/metrics", headers=support.bearer(metrics_token))).status_code == 200
