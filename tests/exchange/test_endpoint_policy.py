"""Where a subscription may send (exchange.endpoints): checked when it is written, and at each delivery
on the address its host resolves to then.

The session's apps list 127.0.0.1 (tests.conftest.make_settings), where the clinic simulator
listens; everything else internal is refused. The delivery-time checks run a worker with a policy
of their own over a database of their own, so no other app's workers take the events first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from api.app import create_app
from exchange import tables
from exchange.delivery import DeliveryWorker, Policy
from exchange.endpoints import EndpointPolicy, EndpointRefused
from storage.database import create_engine
from tests.conftest import BASE, make_settings
from tests.exchange.test_rest_hook import subscription
from tests.fixtures.databases import fresh_database


@pytest.mark.parametrize("endpoint", [
    "http://10.0.0.8/fhir",  # private
    "http://192.168.1.20:8080/hook",  # private
    "http://169.254.169.254/latest/meta-data",  # link-local: a cloud's metadata service
    "http://[::1]:8080/fhir",  # loopback (IPv6; only 127.0.0.1 is listed)
    "http://127.0.0.2/fhir",  # loopback, not the listed address
    "http://0.0.0.0:8080/fhir",  # unspecified
    "http://224.0.0.1/fhir",  # multicast
    "http://[::ffff:10.0.0.1]/fhir",  # private, written as IPv6
    "http://100.64.0.1/fhir",  # shared address space (carrier NAT)
])
async def test_an_endpoint_on_an_internal_address_is_refused_when_written(fhir, endpoint):
    r = await fhir.post("/fhir/Subscription", json=subscription(endpoint))
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Subscription.channel.endpoint"]
    assert "PUENTE_SUBSCRIPTION_ENDPOINTS" in issue["diagnostics"]
    assert (await fhir.get("/fhir/Subscription")).json().get("total", 0) == 0


async def test_a_changed_endpoint_is_checked_too(fhir, clinic):
    created = (await fhir.post("/fhir/Subscription", json=subscription(clinic.base + "/fhir"))).json()
    moved = {**created, "channel": {**created["channel"], "endpoint": "http://10.1.2.3/fhir"}}
    r = await fhir.put(f"/fhir/Subscription/{created['id']}", json=moved)
    assert r.status_code == 422, r.text
    current = (await fhir.get(f"/fhir/Subscription/{created['id']}")).json()
    assert current["channel"]["endpoint"] == clinic.base + "/fhir"


async def test_the_policy_reads_origins_hosts_and_networks():
    policy = EndpointPolicy.parse("https://clinic.lan:8443, *.hospital.lan, 10.20.0.0/16", public=False)
    await policy.check("https://clinic.lan:8443/fhir")
    await policy.check("https://records.hospital.lan/fhir")
    await policy.check("http://10.20.3.4/fhir")
    for refused in ("http://clinic.lan:8443/fhir", "https://clinic.lan/fhir", "http://10.21.0.1/fhir",
                    "https://8.8.8.8/fhir", "ftp://clinic.lan/x", "https://clinic.lan:99999/x"):
        with pytest.raises(EndpointRefused):
            await policy.check(refused)
    with pytest.raises(ValueError, match="PUENTE_SUBSCRIPTION_ENDPOINTS"):
        EndpointPolicy.parse("gopher://x")


async def test_a_name_is_judged_by_what_it_resolves_to():
    with pytest.raises(EndpointRefused, match="loopback"):
        await EndpointPolicy().check("http://localhost:8080/fhir")
    await EndpointPolicy().check("https://receiver.example/fhir")  # not in DNS yet: the delivery will judge
    with pytest.raises(EndpointRefused, match="does not resolve"):
        await EndpointPolicy().pin("https://receiver.example/fhir")
    pinned = await EndpointPolicy.parse("127.0.0.0/8").pin("http://localhost:8080/fhir")
    assert (pinned.url, pinned.host) == ("http://127.0.0.1:8080/fhir", "localhost:8080")


@pytest_asyncio.fixture(loop_scope="session")
async def own_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(backend, tmp_path) as url:
        yield url


async def _subscribe(url: str, endpoint: str) -> str:
    """A Subscription written through an app that lists loopback and delivers nothing itself."""
    app = create_app(make_settings(url, exchange_workers=0, subscription_endpoints="127.0.0.0/8"))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        r = await client.post("/fhir/Subscription", json=subscription(endpoint, payload=None))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _worker(engine, endpoints: EndpointPolicy) -> DeliveryWorker:
    return DeliveryWorker(engine, Policy(0.02, 3.0, 0.05, 0.4, 3_600_000, endpoints))


async def test_delivery_refuses_an_address_the_policy_forbids_now_and_records_it(own_database, clinic):
    subscription_id = await _subscribe(own_database, clinic.base + "/hook")
    engine = create_engine(own_database)
    worker = _worker(engine, EndpointPolicy())  # loopback no longer allowed: as if the name now led there
    try:
        assert await worker.run_once() == 1
        async with engine.connect() as connection:
            attempt = (await connection.execute(select(tables.attempts))).one()
            row = (await connection.execute(select(tables.subscriptions))).one()
            pending = (await connection.execute(select(tables.outbox.c.state))).scalar_one()
    finally:
        await worker.close()
        await engine.dispose()
    assert clinic.received == []  # nothing was sent
    assert attempt.status_code is None and attempt.error.startswith("refused by the endpoint policy")
    assert "loopback" in attempt.error and attempt.subscription_id == subscription_id
    assert (row.status, pending) == ("error", "pending")  # tried again later, like any failure
    assert "loopback" in row.error


async def test_delivery_goes_to_the_address_it_checked_with_the_host_it_was_given(own_database, clinic):
    subscription_id = await _subscribe(own_database, f"http://localhost:{clinic.port}/hook")
    engine = create_engine(own_database)
    worker = _worker(engine, EndpointPolicy.parse("127.0.0.0/8"))
    try:
        assert await worker.run_once() == 1
    finally:
        await worker.close()
        await engine.dispose()
    (handshake,) = clinic.received
    assert handshake.subscription == subscription_id
    assert handshake.headers["host"] == f"localhost:{clinic.port}"
