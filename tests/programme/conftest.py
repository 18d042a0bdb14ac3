"""The programme tests run on the auth-on app (tests/auth fixtures), with real OAuth tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from fhir_mappings import fhir_json
from storage import search_rows
from tests.auth import support
from tests.auth.conftest import auth_app, http, jwks_server  # noqa: F401  (fixtures)
from tests.conftest import BASE
from tests.programme import cohort

Headers = Callable[[], dict[str, str]]


@pytest.fixture(autouse=True)
def _search_base_url() -> Iterator[None]:
    """The auth app indexes absolute references on its own base (https://puente.test), a process-wide
    setting (storage.search_rows): give the rest of the suite back the shared app's (tests.conftest.BASE)."""
    search_rows.configure(base_url=support.FHIR_BASE)
    yield
    search_rows.configure(base_url=f"{BASE}/fhir")


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
