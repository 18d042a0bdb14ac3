"""A clinic's poll misses nothing and repeats nothing, however long the transactions around it run.

The clinic polls `ServiceRequest?performer=...&_lastUpdated=gt<W>` with W the `Bundle.meta.lastUpdated`
of its previous answer (the README's pattern), while a CHW app uploads a 1,000-entry transaction
and single referrals arrive meanwhile. Every referral must reach the clinic exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.auth.support import bearer
from tests.auth.test_policies import clinic_token, ref
from tests.auth.test_policies import world as world  # a fixture

pytestmark = pytest.mark.usefixtures("world")
POLL = "/fhir/ServiceRequest?performer=Organization/clinic-a&_lastUpdated=gt{}&_count=200"


def referral(n: int) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": ref("Patient/pa1"),
            "performer": [ref("Organization/clinic-a")], "note": [{"text": f"referral {n}"}]}


def long_upload(referrals: int, others: int) -> dict:
    entries = [{"resource": referral(n), "request": {"method": "POST", "url": "ServiceRequest"}}
               for n in range(referrals)]
    entries += [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                              "subject": ref("Patient/pa1"), "valueQuantity": {"value": n}},
                 "request": {"method": "POST", "url": "Observation"}} for n in range(others)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def poll_once(http: httpx.AsyncClient, headers: dict, watermark: str, seen: Counter[str]) -> str:
    """One poll, every page of it; returns the watermark for the next."""
    url: str | None = POLL.format(watermark)
    while url:
        response = await http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.update(e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match")
        watermark = body["meta"]["lastUpdated"]
        url = next((link["url"].split("puente.test", 1)[1] for link in body["link"] if link["relation"] == "next"),
                   None)
    return watermark


async def test_a_clinic_poll_misses_nothing_and_repeats_nothing(http, auth_app, rsa, world):
    writer = bearer(world)
    clinic = await clinic_token(http, auth_app, rsa, "clinic-a", "system/ServiceRequest.rs")
    created: set[str] = {"sr-a"}  # the world's referral to clinic-a, there from the start
    seen: Counter[str] = Counter()
    done = asyncio.Event()

    async def upload() -> None:
        response = await http.post("/fhir", json=long_upload(500, 500), headers=writer)
        assert response.status_code == 200, response.text
        created.update(e["fullUrl"].rsplit("/", 1)[1] for e in response.json()["entry"]
                       if "/ServiceRequest/" in e["fullUrl"])

    async def singles() -> None:
        for n in range(40):
            response = await http.post("/fhir/ServiceRequest", json=referral(1000 + n), headers=writer)
            assert response.status_code == 201, response.text
            created.add(response.json()["id"])
            await asyncio.sleep(0.005)

    async def clinic_polls() -> None:
        watermark = "1970-01-01T00:00:00Z"  # the first poll takes everything
        while not done.is_set():
            watermark = await poll_once(http, clinic, watermark, seen)
            await asyncio.sleep(0.01)
        for _ in range(2):  # after everyone is done: whatever is left, once
            watermark = await poll_once(http, clinic, watermark, seen)

    async def writers() -> None:
        await asyncio.gather(upload(), singles())
        done.set()

    await asyncio.gather(writers(), clinic_polls())
    assert len(created) == 1 + 540
    assert set(seen) == created, f"missed {len(created - set(seen))}, unexpected {len(set(seen) - created)}"
    assert {n for n in seen.values()} == {1}, [i for i, n in seen.items() if n > 1][:5]
