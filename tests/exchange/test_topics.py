"""Topic-based Subscriptions (Subscriptions R5 Backport IG for R4), delivered to a real receiver.

The receiver is tests/exchange/clinic_sim.py on its own port (its /hook records each POST, body
and all); the notifications are parsed as the IG's history Bundles with a SubscriptionStatus first.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import update

from exchange import tables
from exchange.delivery import Policy, heartbeat_request
from exchange.endpoints import EndpointPolicy
from exchange.heartbeats import HeartbeatWorker
from exchange.topics import (
    FILTER_CRITERIA,
    HEARTBEAT_PERIOD,
    MAX_COUNT,
    PAYLOAD_CONTENT,
    PROFILE,
    REFERRAL_TOPIC,
    TIMEOUT,
    TOPIC_CANONICAL,
)
from storage.database import create_engine
from tests.auth import support
from tests.auth.support import bearer, register
from tests.auth.test_policies import clinic_token
from tests.exchange.clinic_sim import ClinicSimulator
from tests.exchange.test_rest_hook import referral, status_of
from tests.fixtures.waiting import until

CLINIC = "system/ServiceRequest.rs system/Task.rs system/Subscription.cruds"


def topic_subscription(endpoint: str, organization: str | None = "clinic-a", content: str = "full-resource",
                       heartbeat: int | None = None, **extra) -> dict:
    channel: dict = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                     "header": ["Authorization: Bearer receiver-secret"],
                     "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]},
                     "extension": [{"url": TIMEOUT, "valueUnsignedInt": 10}, {"url": MAX_COUNT, "valuePositiveInt": 5}]}
    if heartbeat is not None:
        channel["extension"].append({"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat})
    resource = {"resourceType": "Subscription", "meta": {"profile": [PROFILE]}, "status": "requested",
                "reason": "referrals for clinic A", "criteria": REFERRAL_TOPIC, "channel": channel, **extra}
    if organization:
        resource["_criteria"] = {"extension": [{"url": FILTER_CRITERIA,
                                                "valueString": f"Task?owner=Organization/{organization}"}]}
    return resource


def task(n: int, clinic: str = "clinic-a", status: str = "requested") -> dict:
    return {"resourceType": "Task", "status": status, "intent": "order",
            "identifier": [{"system": "https://puente.example.org/referral-task", "value": f"t-{n}"}],
            "for": {"reference": "Patient/p1"}, "owner": {"reference": f"Organization/{clinic}"}}


def notifications(clinic: ClinicSimulator, subscription_id: str) -> list[dict]:
    return [json.loads(r.body) for r in clinic.received if r.subscription == subscription_id and r.body]


def status(bundle: dict) -> dict:
    """The SubscriptionStatus Parameters (the first entry) as {name: value or [parts]}."""
    assert bundle["resourceType"] == "Bundle" and bundle["type"] in ("history", "searchset")
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "Parameters"
    found: dict = {"notification-event": []}
    for parameter in first["parameter"]:
        if parameter["name"] == "notification-event":
            found["notification-event"].append({p["name"]: next(v for k, v in p.items() if k.startswith("value"))
                                                for p in parameter["part"]})
        else:
            found[parameter["name"]] = next(v for k, v in parameter.items() if k.startswith("value"))
    return found


def of_type(clinic: ClinicSimulator, subscription_id: str, kind: str) -> list[dict]:
    return [b for b in notifications(clinic, subscription_id) if status(b)["type"] == kind]


async def subscribe(http, clinic: ClinicSimulator, headers: dict | None = None, **options) -> str:
    r = await http.post("/fhir/Subscription", json=topic_subscription(clinic.base + "/hook", **options),
                        headers=headers or {})
    assert r.status_code == 201, r.text
    subscription_id = str(r.json()["id"])

    async def active() -> bool:
        found = await http.get(f"/fhir/Subscription/{subscription_id}", headers=headers or {})
        return found.json()["status"] == "active"

    await until(active)  # the handshake was acknowledged
    return subscription_id


async def test_a_clinic_hears_of_its_referrals_as_history_bundles_with_heartbeats(http, auth_app, rsa, clinic):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC)
    subscription_id = await subscribe(http, clinic, clinic_a, heartbeat=1)
    # A filter naming another clinic widens nothing: matching runs within the subscriber's access.
    prying = await subscribe(http, clinic, clinic_a, organization="clinic-b")

    handshake = of_type(clinic, subscription_id, "handshake")[0]
    assert status(handshake)["topic"] == REFERRAL_TOPIC
    assert status(handshake)["subscription"]["reference"].endswith(f"/Subscription/{subscription_id}")
    assert status(handshake)["events-since-subscription-start"] == "0"
    assert clinic.received[0].headers["authorization"] == "Bearer receiver-secret"

    ours = (await http.post("/fhir/ServiceRequest", json=referral(1, "clinic-a"), headers=admin)).json()["id"]
    theirs = (await http.post("/fhir/ServiceRequest", json=referral(2, "clinic-b"), headers=admin)).json()["id"]
    their_task = (await http.post("/fhir/Task", json=task(3, "clinic-b"), headers=admin)).json()["id"]
    our_task = (await http.post("/fhir/Task", json=task(4, "clinic-a"), headers=admin)).json()
    assert "id" in our_task, our_task

    async def two() -> bool:
        return len(of_type(clinic, subscription_id, "event-notification")) >= 2

    await until(two)
    events = of_type(clinic, subscription_id, "event-notification")
    numbers = [status(b)["notification-event"][0]["event-number"] for b in events]
    assert numbers == ["1", "2"]
    first, second = events
    assert status(first)["events-since-subscription-start"] == "1" and status(first)["status"] == "active"
    assert status(first)["notification-event"][0]["focus"]["reference"].endswith(f"/ServiceRequest/{ours}")
    assert first["entry"][1]["resource"]["id"] == ours  # full-resource: the version that matched
    assert first["entry"][1]["request"] == {"method": "POST", "url": "ServiceRequest"}
    assert second["entry"][1]["resource"]["id"] == our_task["id"]
    assert clinic.received[-1].headers["content-type"] == "application/fhir+json"

    def heartbeats_after_the_events() -> list[dict]:
        # One may have gone out before the events, on a slow machine: the period is a second.
        sent = notifications(clinic, subscription_id)
        after = sent[max(i for i, b in enumerate(sent) if status(b)["type"] == "event-notification") + 1:]
        return [b for b in after if status(b)["type"] == "heartbeat"]

    async def heartbeat() -> bool:
        return bool(heartbeats_after_the_events())

    await until(heartbeat, 15)
    beat = heartbeats_after_the_events()[0]
    assert status(beat)["events-since-subscription-start"] == "2" and len(beat["entry"]) == 1
    everything = json.dumps(notifications(clinic, subscription_id))
    assert theirs not in everything and their_task not in everything  # another clinic's referrals never arrive
    assert of_type(clinic, prying, "event-notification") == []

    r = await http.get(f"/fhir/Subscription/{subscription_id}/$status", headers=clinic_a)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset" and r.json()["total"] == 1
    assert status(r.json())["events-since-subscription-start"] == "2"
    assert (status(r.json())["status"], status(r.json())["type"]) == ("active", "query-status")
    r = await http.get(f"/fhir/Subscription/$status?id={subscription_id}", headers=clinic_a)
    assert r.status_code == 200 and status(r.json())["events-since-subscription-start"] == "2"

    clinic_b = await clinic_token(http, auth_app, rsa, "clinic-b", CLINIC)
    for path in ("$status", "$events"):
        r = await http.get(f"/fhir/Subscription/{subscription_id}/{path}", headers=clinic_b)
        assert r.status_code == 404, r.text
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await http.post(f"/fhir/Subscription/{subscription_id}/$events", headers=clinic_b,
                        json={"resourceType": "Parameters", "parameter": [{"name": "eventsSinceNumber",
                                                                            "valueString": "1"}]})
    assert r.status_code == 404
    r = await http.get(f"/fhir/Subscription/$status?id={subscription_id}", headers=clinic_b)
    assert r.status_code == 404
    assert (await http.get("/fhir/Subscription/$status", headers=clinic_b)).json()["total"] == 0  # none of its own
    mine = (await http.post("/fhir/Subscription/$status", headers=clinic_a, json={"resourceType": "Parameters"})).json()
    listed = {status({**mine, "entry": [e]})["subscription"]["reference"].rsplit("/", 1)[-1]
              for e in mine["entry"]}
    assert listed == {subscription_id, prying}
    assert (await http.get("/fhir/Subscription/$status?status=off", headers=clinic_a)).json()["total"] == 0


async def test_a_receiver_that_was_down_catches_up_with_events_then_delivery_resumes(fhir, clinic):
    subscription_id = await subscribe(fhir, clinic, content="id-only")
    await clinic.stop()
    created = []
    for n in range(1, 6):
        r = await fhir.post("/fhir/ServiceRequest", json=referral(n))
        assert r.status_code == 201, r.text
        created.append(r.json()["id"])
    await fhir.post("/fhir/ServiceRequest", json=referral(99, "clinic-b"))  # not for this subscription

    async def in_error() -> bool:
        return await status_of(fhir, subscription_id) == "error"

    await until(in_error)
    r = await fhir.get(f"/fhir/Subscription/{subscription_id}/$events?eventsSinceNumber=2&content=full-resource")
    assert r.status_code == 200, r.text
    caught = r.json()
    assert caught["type"] == "history"
    found = status(caught)
    assert (found["type"], found["status"], found["events-since-subscription-start"]) == ("query-event", "error", "5")
    assert [e["event-number"] for e in found["notification-event"]] == ["2", "3", "4", "5"]
    assert [e["resource"]["id"] for e in caught["entry"][1:]] == created[1:]
    r = await fhir.post(f"/fhir/Subscription/{subscription_id}/$events", json={
        "resourceType": "Parameters", "parameter": [{"name": "eventsSinceNumber", "valueString": "1"},
                                                    {"name": "eventsUntilNumber", "valueString": "2"}]})
    only = r.json()
    assert [e["event-number"] for e in status(only)["notification-event"]] == ["1", "2"]
    assert all("resource" not in e for e in only["entry"][1:])  # id-only, as the subscription asks
    assert (await fhir.get(f"/fhir/Subscription/{subscription_id}/$events?eventsSinceNumber=x")).status_code == 400

    await clinic.start()

    async def all_five() -> bool:
        return len({status(b)["notification-event"][0]["event-number"]
                    for b in of_type(clinic, subscription_id, "event-notification")}) == 5

    await until(all_five, 90)
    numbers = [int(status(b)["notification-event"][0]["event-number"])
               for b in of_type(clinic, subscription_id, "event-notification")]
    assert numbers == sorted(numbers) and set(numbers) == {1, 2, 3, 4, 5}  # in order, repeats only in place
    assert await status_of(fhir, subscription_id) == "active"


def _bad(**changes) -> dict:
    resource = topic_subscription("https://clinic.example/hook")
    for path, value in changes.items():
        target = resource
        *parents, last = path.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return resource


@pytest.mark.parametrize(("resource", "element"), [
    (_bad(criteria="https://other.example/SubscriptionTopic/x"), "Subscription.criteria"),
    (_bad(_criteria={"extension": [{"url": FILTER_CRITERIA, "valueString": "Patient?organization=Organization/a"}]}),
     "Subscription.criteria.extension"),
    (_bad(_criteria={"extension": [
        {"url": FILTER_CRITERIA, "valueString": "Task?owner=Organization/a"},
        {"url": FILTER_CRITERIA, "valueString": "ServiceRequest?performer=Organization/b"}]}),
     "Subscription.criteria.extension"),
    (_bad(**{"channel.type": "websocket"}), "Subscription.channel.type"),
    (_bad(**{"channel.endpoint": "ftp://clinic.example/x"}), "Subscription.channel.endpoint"),
    (_bad(**{"channel._payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": "everything"}]}}),
     "Subscription.channel.payload.extension"),
    (_bad(**{"channel.extension": [{"url": HEARTBEAT_PERIOD, "valueUnsignedInt": 0}]}),
     "Subscription.channel.extension"),
    (_bad(**{"channel.extension": [{"url": TIMEOUT, "valueUnsignedInt": 100000}]}), "Subscription.channel.extension"),
])
async def test_a_backport_subscription_that_cannot_be_served_is_refused_with_an_outcome(fhir, resource, element):
    r = await fhir.post("/fhir/Subscription", json=resource)
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["expression"] == [element]
    assert (await fhir.get("/fhir/Subscription")).json().get("total", 0) == 0


async def test_the_capability_statement_names_the_topic(fhir):
    statement = (await fhir.get("/fhir/metadata")).json()
    subscription = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    assert {"url": TOPIC_CANONICAL, "valueCanonical": REFERRAL_TOPIC} in subscription["extension"]
    assert {op["name"] for op in subscription["operation"]} >= {"status", "events"}


async def test_a_subscription_turned_off_hears_nothing_more(fhir, clinic):
    subscription_id = await subscribe(fhir, clinic, organization=None, content="empty")
    resource = (await fhir.get(f"/fhir/Subscription/{subscription_id}")).json()
    await fhir.post("/fhir/ServiceRequest", json=referral(1))

    async def one() -> bool:
        return len(of_type(clinic, subscription_id, "event-notification")) == 1

    await until(one)
    empty = of_type(clinic, subscription_id, "event-notification")[0]
    assert len(empty["entry"]) == 1 and "focus" not in status(empty)["notification-event"][0]  # empty: no focus
    r = await fhir.put(f"/fhir/Subscription/{subscription_id}", json={**resource, "status": "off"})
    assert r.status_code == 200, r.text
    await fhir.post("/fhir/ServiceRequest", json=referral(2))
    await asyncio.sleep(0.5)
    assert len(of_type(clinic, subscription_id, "event-notification")) == 1


async def test_a_changed_then_deleted_referral_is_announced_as_put_then_delete(fhir, clinic):
    subscription_id = await subscribe(fhir, clinic)
    created = (await fhir.post("/fhir/ServiceRequest", json=referral(1))).json()
    r = await fhir.put(f"/fhir/ServiceRequest/{created['id']}", json={**created, "priority": "urgent"})
    assert r.status_code == 200, r.text
    other = (await fhir.post("/fhir/ServiceRequest", json=referral(2, "clinic-b"))).json()["id"]
    assert (await fhir.delete(f"/fhir/ServiceRequest/{other}")).status_code in (200, 204)  # never heard of
    assert (await fhir.delete(f"/fhir/ServiceRequest/{created['id']}")).status_code in (200, 204)

    async def three() -> bool:
        return len(of_type(clinic, subscription_id, "event-notification")) >= 3

    await until(three)
    await asyncio.sleep(0.3)
    events = of_type(clinic, subscription_id, "event-notification")
    assert [status(b)["notification-event"][0]["event-number"] for b in events] == ["1", "2", "3"]
    assert [b["entry"][1]["request"]["method"] for b in events] == ["POST", "PUT", "DELETE"]
    assert events[1]["entry"][1]["resource"]["priority"] == "urgent"
    assert "resource" not in events[2]["entry"][1]


async def test_workers_in_several_processes_send_a_due_heartbeat_once(fhir, clinic, database_url):
    """Four heartbeat workers, each with its own engine (as in four processes), beside the app's own."""
    subscription_id = await subscribe(fhir, clinic, heartbeat=3600)
    t, o = tables.topic_subscriptions, tables.outbox
    engines = [create_engine(database_url) for _ in range(4)]
    http = httpx.AsyncClient(timeout=5)
    try:
        async with engines[0].begin() as connection:  # the last event an hour and a minute ago: a heartbeat is due
            long_ago = int(time.time() * 1000) - 3_660_000
            await connection.execute(update(o).where(o.c.subscription_id == subscription_id)
                                     .values(created_at=long_ago))
            await connection.execute(update(t).where(t.c.id == subscription_id).values(next_heartbeat_at=long_ago))
        loopback = EndpointPolicy.parse("127.0.0.0/8")  # the receiver is local; heartbeats obey the endpoint policy
        workers = [HeartbeatWorker(engine, http, heartbeat_request, Policy(0.05, 5, 1, 1, 1, loopback))
                   for engine in engines]
        sent = await asyncio.gather(*(w.run_once() for w in workers))
        await asyncio.sleep(0.5)  # and the app's own worker had its chance too
    finally:
        await http.aclose()
        for engine in engines:
            await engine.dispose()
    assert sum(sent) <= 1
    assert len(of_type(clinic, subscription_id, "heartbeat")) == 1
