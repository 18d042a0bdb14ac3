"""Search tests: a module loads its resources once per backend, then runs many read-only queries on them.

A module defines `RESOURCES` (each with an `id`: stored with PUT, so ids are stable); the `loaded`
fixture empties the database, stores them, and hands back a client. Tests that change data use the
ordinary per-test `client` fixture instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.conftest import BASE
from tests.fixtures.databases import empty_all_tables


async def store(client: httpx.AsyncClient, resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = await client.put(url, json=resource)
        assert response.status_code in (200, 201), response.text


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def loaded(app: FastAPI, database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    await empty_all_tables(database_url)
    _index_our_base_as_local()  # before the module's resources are indexed, not only before its tests
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Accept": "application/fhir+json"}) as c:
        await store(c, request.module.RESOURCES)
        yield c


async def search(client: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.get(url if url.startswith("/fhir/") else f"/fhir/{url}", **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


async def found_ids(client: httpx.AsyncClient, url: str) -> set[str]:
    """The ids of every match, following `next` links to the end."""
    ids: list[str] = []
    body = await search(client, url)
    while True:
        ids.extend(e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match")
        nxt = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
        if nxt is None:
            break
        body = await search(client, nxt.removeprefix(BASE))
    assert len(ids) == len(set(ids)), f"duplicates across pages: {ids}"
    return set(ids)


def ids(text: str) -> set[str]:
    """'a b c' -> {'a', 'b', 'c'}"""
    return set(text.split())


def _index_our_base_as_local() -> None:
    from storage import search_rows

    search_rows.configure(base_url=f"{BASE}/fhir")


@pytest.fixture(autouse=True)
def _our_base_url_is_local() -> object:
    """References written as absolute URLs on our base index as local ones (the app configures this
    at start). Set for each test, and by `loaded` before it stores: the base is process-wide
    (storage.search_rows), and an app of another base started by an earlier test (tests/auth's)
    would otherwise leave its own."""
    from storage import search_rows

    previous = search_rows.base_url()
    _index_our_base_as_local()
    yield
    search_rows.configure(base_url=previous)
