"""The programme tests run on the auth-on app (tests/auth fixtures), with real OAuth tokens."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest_asyncio
from fastapi import FastAPI

from fhir_mappings import fhir_json
from tests.auth import support
from tests.auth.conftest import auth_app, http, jwks_server  # noqa: F401  (fixtures)
from tests.programme import cohort

Headers = Callable[[], dict[str, str]]


def admin_headers(app: FastAPI) -> dict[str, str]:
    return support.bearer(support.sign_access_token(app, support.token_claims()))


@pytest_asyncio.fixture(loop_scope="session")
async def loaded(http: httpx.AsyncClient, auth_app: FastAPI) -> httpx.AsyncClient:  # noqa: F811
    """The cohort of tests/programme/cohort.py, written in one transaction by an administrator."""
    r = await http.post(
        "/fhir",
        content=fhir_json.dumps(cohort.transaction()),
        headers={**admin_headers(auth_app), "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 200, r.text
    return http


async def chw_headers(
    client: httpx.AsyncClient, app: FastAPI, username: str, practitioner: str, role: str = "chw"
) -> dict[str, str]:
    """A CHW signed in through the login page (authorization code + PKCE)."""
    client_id, _ = await support.register(app, scopes="user/*.rs", redirect_uris=(support.REDIRECT,), public=True)
    await support.add_user(app, username, practitioner, role)
    tokens = await support.user_tokens(client, client_id, username, scope="user/*.rs")
    return support.bearer(tokens["access_token"])
