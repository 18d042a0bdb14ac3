"""R4 rest-hook Subscriptions (subscription.html), delivered from the outbox to a real receiver.

The receiver is tests/exchange/clinic_sim.py, served by uvicorn on its own port; it is stopped and
started again in the middle of a stream, and made to lose acknowledgements.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from exchange import tables
from storage.database import create_engine
from tests.exchange.clinic_sim import (
    ClinicSimulator,
    assert_in_order_with_repeats_only_where_acks_were_lost,
    unacknowledged,
)
from tests.fixtures.waiting import until


def subscription(endpoint: str, criteria: str = "ServiceRequest?performer=Organization/clinic-a",
                 payload: str | None = "application/fhir+json", **channel) -> dict:
    hook = {"type": "rest-hook", "endpoint": endpoint, "header": ["Authorization: Bearer receiver-secret"],
            **channel}
    if payload:
        hook["payload"] = payload
    return {"resourceType": "Subscription", "status": "requested", "reason": "referrals for clinic A",
            "criteria": criteria, "channel": hook}


def referral(n: int, clinic: str = "clinic-a") -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "identifier": [{"system": "https://puente.example.org/referral", "value": f"r-{n}"}],
            "subject": {"reference": "Patient/p1"}, "performer": [{"reference": f"Organization/{clinic}"}]}


async def status_of(fhir, subscription_id: str) -> str:
    return str((await fhir.get(f"/fhir/Subscription/{subscription_id}")).json()["status"])


async def subscribe(fhir, clinic: ClinicSimulator, **options) -> str:
    r = await fhir.post("/fhir/Subscription", json=subscription(clinic.base + options.pop("path", "/fhir"), **options))
    assert r.status_code == 201, r.text
    subscription_id = r.json()["id"]

    async def active() -> bool:
        return await status_of(fhir, subscription_id) == "active"

    await until(active)  # the handshake was acknowledged
    return str(subscription_id)


async def test_the_handshake_makes_the_subscription_active(fhir, clinic):
    subscription_id = await subscribe(fhir, clinic, path="/hook", payload=None)
    handshake = clinic.received[0]
    assert handshake.headers["x-puente-handshake"] == "true"
    assert handshake.headers["authorization"] == "Bearer receiver-secret"  # the channel's header
    assert (handshake.subscription, handshake.event_number, handshake.body) == (subscription_id, 1, b"")


async def test_a_ping_has_no_body_and_a_full_payload_is_the_resource_put_at_the_endpoint(fhir, clinic):
    ping = await subscribe(fhir, clinic, path="/hook", payload=None)
    full = await subscribe(fhir, clinic, path="/fhir")
    created = (await fhir.post("/fhir/ServiceRequest", json=referral(1))).json()
    await fhir.post("/fhir/ServiceRequest", json=referral(2, clinic="clinic-b"))  # matches neither

    async def both() -> bool:
        return len(clinic.events(ping)) == 2 and len(clinic.events(full)) == 2

    await until(both)
    pinged = [r for r in clinic.received if r.subscription == ping][-1]
    assert (pinged.method, pinged.path, pinged.body) == ("POST", "/hook", b"")
    put = [r for r in clinic.received if r.subscription == full][-1]
    assert (put.method, put.path) == ("PUT", f"/fhir/ServiceRequest/{created['id']}")
    assert b'"r-1"' in put.body and put.headers["content-type"] == "application/fhir+json"
    await asyncio.sleep(0.3)
    assert len(clinic.events(full)) == 2  # the other clinic's referral was not announced


@pytest.mark.parametrize("channel", [
    {"criteria": "ServiceRequest?performer=Organization/clinic-a", "channel": {"type": "websocket"}},
    {"criteria": "ServiceRequest", "channel": {"type": "rest-hook", "endpoint": "ftp://clinic.example/x"}},
    {"criteria": "ServiceRequest", "channel": {"type": "rest-hook", "endpoint": "https://c.example",
                                               "payload": "text/xml"}},
    {"criteria": "NotAType?x=1", "channel": {"type": "rest-hook", "endpoint": "https://c.example"}},
    {"criteria": "ServiceRequest?no-such-param=1", "channel": {"type": "rest-hook", "endpoint": "https://c.example"}},
    {"criteria": "ServiceRequest", "channel": {"type": "rest-hook", "endpoint": "https://c.example",
                                               "header": ["no colon"]}},
])
async def test_a_subscription_that_cannot_be_served_is_refused_with_an_outcome(fhir, channel):
    r = await fhir.post("/fhir/Subscription", json={"resourceType": "Subscription", "status": "requested",
                                                    "reason": "x", **channel})
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["expression"][0].startswith("Subscription.")
    assert (await fhir.get("/fhir/Subscription")).json().get("total", 0) == 0


async def _counts(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            attempts = (await connection.execute(select(func.count()).select_from(tables.attempts))).scalar_one()
            failed = (await connection.execute(select(func.count()).select_from(tables.attempts)
                                               .where(tables.attempts.c.status_code.is_(None)))).scalar_one()
    finally:
        await engine.dispose()
    return int(attempts), int(failed)


async def test_500_referrals_arrive_in_order_through_a_receiver_restart_and_lost_acks(fhir, clinic, database_url):
    subscription_id = await subscribe(fhir, clinic)
    created: list[str] = []

    async def send(first: int, last: int) -> None:
        for n in range(first, last):
            r = await fhir.post("/fhir/ServiceRequest", json=referral(n))
            assert r.status_code == 201, r.text
            created.append(r.json()["id"])

    await send(0, 150)
    await clinic.stop()  # the clinic's server goes down in the middle of the stream
    await send(150, 300)

    async def in_error() -> bool:
        return await status_of(fhir, subscription_id) == "error"

    await until(in_error)
    await clinic.start()
    clinic.lose_acks, clinic.slow_seconds = 3, 3.5  # answers after Puente's 3 s timeout
    await send(300, 500)

    async def everything() -> bool:
        return {r.path.rsplit("/", 1)[-1] for r in clinic.received if r.subscription == subscription_id} >= set(created)

    await until(everything, 120)
    assert await status_of(fhir, subscription_id) == "active"  # back once the endpoint answered
    lost = await unacknowledged(database_url, subscription_id)
    assert_in_order_with_repeats_only_where_acks_were_lost(clinic, subscription_id, lost)
    assert max(clinic.events(subscription_id)) == 501  # the handshake and 500 referrals
    assert clinic.late, "no acknowledgement was lost: the test did not test repeats"
    attempts, refused = await _counts(database_url)
    assert refused > 0 and attempts >= 501 + refused  # every attempt recorded, the failed ones too


async def test_the_capability_statement_says_how_subscriptions_and_tasks_behave(fhir):
    statement = (await fhir.get("/fhir/metadata")).json()
    notes = {r["type"]: r.get("documentation", "") for r in statement["rest"][0]["resource"]}
    assert "rest-hook" in notes["Subscription"] and "X-Puente-Event-Number" in notes["Subscription"]
    assert "state machine" in notes["Task"]
