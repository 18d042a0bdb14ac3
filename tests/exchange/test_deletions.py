"""Deletions are announced to the subscriptions that told of the resource before (exchange.deletions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from fastapi import FastAPI, Request, Response

from tests.auth import support
from tests.auth.support import bearer, register
from tests.auth.test_policies import clinic_token
from tests.exchange.clinic_sim import ClinicSimulator
from tests.exchange.test_rest_hook import referral, subscribe, subscription, until


class FhirBaseClinic(ClinicSimulator):
    """The clinic simulator, also taking the DELETE a full-payload channel sends for a deletion."""

    def app(self) -> FastAPI:
        app = super().app()

        @app.delete("/fhir/{resource_type}/{resource_id}")
        async def delete(request: Request) -> Response:
            return await self._record(request)

        return app


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[FhirBaseClinic]:
    sim = FhirBaseClinic()
    await sim.start()
    yield sim
    await sim.stop()


async def arrived(sim: ClinicSimulator, subscription_id: str, count: int) -> None:
    async def enough() -> bool:
        return len(sim.events(subscription_id)) >= count

    await until(enough)
    await asyncio.sleep(0.3)  # and nothing more comes
    assert len(sim.events(subscription_id)) == count, [(r.method, r.path) for r in sim.received]


async def test_a_deletion_is_a_delete_at_a_fhir_base_and_a_named_ping_elsewhere(fhir, receiver):
    full = await subscribe(fhir, receiver)
    ping = await subscribe(fhir, receiver, path="/hook", payload=None)
    ours = (await fhir.post("/fhir/ServiceRequest", json=referral(1))).json()["id"]
    theirs = (await fhir.post("/fhir/ServiceRequest", json=referral(2, clinic="clinic-b"))).json()["id"]
    await arrived(receiver, full, 2)
    assert (await fhir.delete(f"/fhir/ServiceRequest/{ours}")).status_code in (200, 204)
    assert (await fhir.delete(f"/fhir/ServiceRequest/{theirs}")).status_code in (200, 204)  # never announced
    await arrived(receiver, full, 3)
    await arrived(receiver, ping, 3)
    deleted = [r for r in receiver.received if r.subscription == full][-1]
    assert (deleted.method, deleted.path, deleted.event_number) == ("DELETE", f"/fhir/ServiceRequest/{ours}", 3)
    pinged = [r for r in receiver.received if r.subscription == ping][-1]
    assert (pinged.method, pinged.path, pinged.body) == ("POST", "/hook", b"")
    assert pinged.headers["x-puente-deleted"] == f"ServiceRequest/{ours}"


async def test_a_subscription_that_never_told_of_a_resource_hears_nothing_of_its_deletion(fhir, receiver):
    before = (await fhir.post("/fhir/ServiceRequest", json=referral(1))).json()["id"]
    later = await subscribe(fhir, receiver)
    await fhir.delete(f"/fhir/ServiceRequest/{before}")
    recreated = (await fhir.post("/fhir/ServiceRequest", json=referral(2))).json()["id"]
    await arrived(receiver, later, 2)  # the handshake and the new referral only
    assert [r.path for r in receiver.received if r.subscription == later][-1] == f"/fhir/ServiceRequest/{recreated}"


CLINIC = "system/ServiceRequest.rs system/Subscription.cruds"


async def test_a_deletion_is_announced_only_within_what_the_owner_could_see(http, auth_app, rsa, receiver):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC)
    r = await http.post("/fhir/Subscription", json=subscription(receiver.base + "/fhir", criteria="ServiceRequest"),
                        headers=clinic_a)
    assert r.status_code == 201, r.text
    subscription_id = r.json()["id"]
    kept = (await http.post("/fhir/ServiceRequest", json=referral(1), headers=admin)).json()
    moved = (await http.post("/fhir/ServiceRequest", json=referral(2), headers=admin)).json()
    await arrived(receiver, subscription_id, 3)  # handshake, two referrals
    # The second referral goes to clinic B: clinic A no longer sees it, and hears nothing of its deletion.
    moved["performer"] = [{"reference": "Organization/clinic-b"}]
    assert (await http.put(f"/fhir/ServiceRequest/{moved['id']}", json=moved, headers=admin)).status_code == 200
    await http.delete(f"/fhir/ServiceRequest/{moved['id']}", headers=admin)
    await http.delete(f"/fhir/ServiceRequest/{kept['id']}", headers=admin)
    await arrived(receiver, subscription_id, 4)
    last = [r for r in receiver.received if r.subscription == subscription_id][-1]
    assert (last.method, last.path) == ("DELETE", f"/fhir/ServiceRequest/{kept['id']}")
