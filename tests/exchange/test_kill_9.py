"""`puente serve` killed with -9 in the middle of a stream of referrals loses no notification.

The outbox row is written in the referral's own transaction, so whatever was acknowledged before
the kill is delivered after it: here by the workers of a second `serve` and of `puente exchange
work` (a delivery process of its own), sharing the outbox through the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.exchange.clinic_sim import assert_in_order_with_repeats_only_where_acks_were_lost, unacknowledged
from tests.exchange.test_rest_hook import referral, subscription
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.live_server import serve
from tests.fixtures.waiting import until

FAST = {"PUENTE_EXCHANGE_POLL_SECONDS": "0.02", "PUENTE_EXCHANGE_BACKOFF_SECONDS": "0.05",
        "PUENTE_EXCHANGE_BACKOFF_MAX_SECONDS": "0.4", "PUENTE_EXCHANGE_TIMEOUT_SECONDS": "5",
        "PUENTE_SUBSCRIPTION_ENDPOINTS": "127.0.0.1"}  # the clinic simulator, on loopback


async def _send(base: str, first: int, last: int, created: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for n in range(first, last):
            r = await http.post("/fhir/ServiceRequest", json=referral(n))
            assert r.status_code == 201, r.text
            created.append(r.json()["id"])


async def test_kill_9_mid_stream_loses_nothing(database_url, clinic, tmp_path):
    await empty_all_tables(database_url)
    created: list[str] = []
    with serve(database_url, workers=1, extra_env=FAST) as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            r = await http.post("/fhir/Subscription", json=subscription(clinic.base + "/fhir"))
            assert r.status_code == 201, r.text
            subscription_id = r.json()["id"]
        await _send(server.base, 0, 100, created)
        await clinic.stop()  # a backlog builds up in the outbox...
        await _send(server.base, 100, 150, created)
        server.crash()  # ...and the server dies with it
        received = clinic.events(subscription_id)
        if received:  # the event in flight at the kill may have arrived without its acknowledgement
            clinic.lost.add((subscription_id, max(received)))
    assert len(set(clinic.events(subscription_id))) < 151, "everything was delivered before the kill"
    await clinic.start()
    env = {**os.environ, **FAST, "PUENTE_DATABASE_URL": database_url}
    puente = Path(sys.executable).parent / "puente"
    log = (tmp_path / "work.log").open("wb")
    command = [str(puente), "exchange", "work", "--workers", "2"]
    # Started once; the loop has nothing else to do meanwhile.
    worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: ASYNC220
                              start_new_session=True)
    try:
        with serve(database_url, workers=1, extra_env=FAST) as server:
            await _send(server.base, 150, 300, created)

            async def everything() -> bool:
                paths = {r.path.rsplit("/", 1)[-1] for r in clinic.received if r.subscription == subscription_id}
                return paths >= set(created)

            await until(everything, 180)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=15)
        log.close()
    lost = await unacknowledged(database_url, subscription_id)
    assert_in_order_with_repeats_only_where_acks_were_lost(clinic, subscription_id, lost)
    assert max(clinic.events(subscription_id)) == 301  # the handshake and 300 referrals
