"""channel.header values are write-only: stored masked in the resource, sent as given (exchange.header_secrets)."""

from __future__ import annotations

import json

from sqlalchemy import select

from exchange import tables
from storage.database import create_engine
from tests.exchange.test_rest_hook import referral, status_of, subscription
from tests.fixtures.waiting import until

SECRET = "receiver-secret"  # tests.exchange.test_rest_hook.subscription's "Authorization: Bearer receiver-secret"


async def stored_headers(url: str, subscription_id: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(select(tables.subscriptions.c.headers)
                                            .where(tables.subscriptions.c.id == subscription_id))).one()
    finally:
        await engine.dispose()
    return list(json.loads(row.headers))


async def everything_a_reader_gets(fhir, subscription_id: str) -> str:
    paths = [f"/fhir/Subscription/{subscription_id}", "/fhir/Subscription", f"/fhir/Subscription?_id={subscription_id}",
             f"/fhir/Subscription/{subscription_id}/_history", "/fhir/Subscription/_history", "/fhir/_history",
             f"/fhir/Subscription/{subscription_id}/_history/1"]
    bodies = []
    for path in paths:
        r = await fhir.get(path)
        assert r.status_code == 200, (path, r.text)
        bodies.append(r.text)
    return "\n".join(bodies)


async def active(fhir, subscription_id: str) -> None:
    async def is_active() -> bool:
        return await status_of(fhir, subscription_id) == "active"

    await until(is_active)


async def test_a_header_value_is_never_read_back_but_is_sent(fhir, clinic, database_url):
    r = await fhir.post("/fhir/Subscription", json=subscription(clinic.base + "/hook", payload=None,
                                                                header=["Authorization: Bearer receiver-secret",
                                                                        "X-Clinic: la-esperanza"]))
    assert r.status_code == 201, r.text
    assert r.json()["channel"]["header"] == ["Authorization: ***", "X-Clinic: ***"]
    subscription_id = r.json()["id"]
    await active(fhir, subscription_id)
    assert SECRET not in await everything_a_reader_gets(fhir, subscription_id)
    assert clinic.received[0].headers["authorization"] == "Bearer receiver-secret"
    assert clinic.received[0].headers["x-clinic"] == "la-esperanza"
    assert await stored_headers(database_url, subscription_id) == ["Authorization: Bearer receiver-secret",
                                                                   "X-Clinic: la-esperanza"]


async def test_an_update_that_sends_the_mask_back_keeps_the_secret(fhir, clinic, database_url):
    subscription_id = (await fhir.post("/fhir/Subscription",
                                       json=subscription(clinic.base + "/hook", payload=None))).json()["id"]
    await active(fhir, subscription_id)
    current = (await fhir.get(f"/fhir/Subscription/{subscription_id}")).json()
    r = await fhir.put(f"/fhir/Subscription/{subscription_id}", json={**current, "reason": "renamed"})
    assert r.status_code == 200, r.text
    assert await stored_headers(database_url, subscription_id) == ["Authorization: Bearer receiver-secret"]
    assert await status_of(fhir, subscription_id) == "active"  # the same channel: no new handshake
    await fhir.post("/fhir/ServiceRequest", json=referral(1))

    async def notified() -> bool:
        return len(clinic.events(subscription_id)) == 2

    await until(notified)
    assert all(r.headers["authorization"] == "Bearer receiver-secret" for r in clinic.received)


async def test_an_update_with_a_new_value_replaces_it(fhir, clinic, database_url):
    subscription_id = (await fhir.post("/fhir/Subscription",
                                       json=subscription(clinic.base + "/hook", payload=None))).json()["id"]
    await active(fhir, subscription_id)
    current = (await fhir.get(f"/fhir/Subscription/{subscription_id}")).json()
    rotated = {**current, "channel": {**current["channel"], "header": ["Authorization: Bearer rotated"]}}
    r = await fhir.put(f"/fhir/Subscription/{subscription_id}", json=rotated)
    assert r.status_code == 200, r.text
    assert r.json()["channel"]["header"] == ["Authorization: ***"]
    assert await stored_headers(database_url, subscription_id) == ["Authorization: Bearer rotated"]

    async def handshaken_again() -> bool:
        return len(clinic.events(subscription_id)) == 2

    await until(handshaken_again)  # a new channel is handshaken, with the new value
    assert clinic.received[-1].headers["authorization"] == "Bearer rotated"
    assert "rotated" not in await everything_a_reader_gets(fhir, subscription_id)


async def test_a_mask_with_no_stored_value_is_refused(fhir, clinic):
    r = await fhir.post("/fhir/Subscription", json=subscription(clinic.base + "/hook", header=["Authorization: ***"]))
    assert r.status_code == 422, r.text
    assert r.json()["issue"][0]["expression"] == ["Subscription.channel.header"]


async def test_the_capability_statement_says_headers_are_write_only_and_deletions_announced(fhir):
    statement = (await fhir.get("/fhir/metadata")).json()
    note = {r["type"]: r.get("documentation", "") for r in statement["rest"][0]["resource"]}["Subscription"]
    assert "write-only" in note and "X-Puente-Deleted" in note and "public addresses" in note
