"""A subscription only ever notifies about what its owner may read (real tokens, auth on)."""

from __future__ import annotations

import asyncio

from tests.auth import support
from tests.auth.support import bearer, register
from tests.auth.test_policies import clinic_token
from tests.exchange.test_rest_hook import referral, subscription
from tests.fixtures.waiting import until

CLINIC = "system/ServiceRequest.rs system/Subscription.cruds"


async def test_a_clinics_subscription_to_every_referral_hears_only_of_its_own(http, auth_app, rsa, clinic):
    admin_id, _ = await register(auth_app, scopes="system/*.cruds", keys=(rsa,), admin=True)
    admin = bearer(await support.access_token(http, admin_id, rsa, "system/*.cruds"))
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC)
    wide = subscription(clinic.base + "/fhir", criteria="ServiceRequest")  # no performer: everything it may see
    r = await http.post("/fhir/Subscription", json=wide, headers=clinic_a)
    assert r.status_code == 201, r.text
    subscription_id = r.json()["id"]

    async def active() -> bool:
        return (await http.get(f"/fhir/Subscription/{subscription_id}", headers=clinic_a)).json()["status"] == "active"

    await until(active)
    ours = (await http.post("/fhir/ServiceRequest", json=referral(1, "clinic-a"), headers=admin)).json()["id"]
    theirs = (await http.post("/fhir/ServiceRequest", json=referral(2, "clinic-b"), headers=admin)).json()["id"]
    last = (await http.post("/fhir/ServiceRequest", json=referral(3, "clinic-a"), headers=admin)).json()["id"]

    async def both() -> bool:
        return len(clinic.events(subscription_id)) == 3

    await until(both)
    await asyncio.sleep(0.5)
    paths = [r.path for r in clinic.received if r.subscription == subscription_id]
    assert paths == ["/fhir", f"/fhir/ServiceRequest/{ours}", f"/fhir/ServiceRequest/{last}"]
    assert all(theirs not in p for p in paths)


async def test_a_subscription_to_what_the_owner_may_not_search_is_refused(http, auth_app, rsa, clinic):
    clinic_a = await clinic_token(http, auth_app, rsa, "clinic-a", CLINIC)
    r = await http.post("/fhir/Subscription", json=subscription(clinic.base + "/fhir", criteria="Observation"),
                        headers=clinic_a)
    assert r.status_code == 403, r.text
    assert r.json()["issue"][0]["expression"] == ["Subscription.criteria"]
