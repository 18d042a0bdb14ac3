"""Pushing referrals to a partner clinic's FHIR server with SMART Backend Services, and bringing its
Task updates back (README, "Partner clinics").

The clinic is tests/exchange/clinic_sim.py (`ClinicEhr`), served by uvicorn on its own port: its
token endpoint checks Puente's signed assertions, its FHIR endpoint processes transaction Bundles of
conditional creates. It is stopped and restarted in the middle of a stream, and made to lose
acknowledgements; keys are made by the tests, never kept in the repository.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select

from exchange import partners
from exchange.partner_tables import partner_attempts, partner_outbox
from exchange.partner_tables import partners as partner_table
from exchange.tokens import SigningKey, generate_key
from storage import search_rows
from storage.database import create_engine
from tests.exchange.clinic_sim import ClinicSimulator
from tests.fixtures.databases import empty_all_tables
from tests.fixtures.live_server import serve
from tests.fixtures.waiting import until


@pytest.fixture(autouse=True)
def _pushes_name_puente_by_this_base() -> Iterator[None]:
    """Pushes name Puente's resources by the process-wide base URL (storage.search_rows), which each
    app of the session sets when it is made (the auth tests' app says https://puente.test): the
    pushes these tests check are those of an app at tests.conftest.BASE."""
    before = search_rows.base_url()
    search_rows.configure(base_url=PUENTE)
    yield
    search_rows.configure(base_url=before)


@pytest.fixture(autouse=True)
async def no_partner_left(database_url: str) -> AsyncIterator[None]:
    """This session's exchange workers would go on polling a partner whose clinic is gone."""
    yield
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(partner_table))
    finally:
        await engine.dispose()


PUENTE = "http://testserver/fhir"  # tests.conftest.BASE: Puente's identifier systems are its resource URLs
DNI = "http://www.reniec.gob.pe/dni"


async def add_partner(database_url: str, clinic: ClinicSimulator, tmp_path: Path, *, name: str = "clinic-a",
                      organization: str = "Organization/clinic-a", client_id: str = "puente",
                      registered: SigningKey | None = None) -> tuple[partners.Partner, SigningKey]:
    """A partner for `organization` at `clinic`, whose key the clinic registers (or `registered` instead)."""
    key = generate_key(tmp_path / f"{name}.pem")
    clinic.ehr.register(client_id, (registered or key).jwks())
    engine = create_engine(database_url)
    try:
        partner, _ = await partners.add(engine, name=name, base_url=clinic.ehr_base, token_url=clinic.token_url,
                                        client_id=client_id, key_file=tmp_path / f"{name}.pem",
                                        organization=organization)
    finally:
        await engine.dispose()
    return partner, key


async def a_patient(fhir, dni: str = "40000001") -> str:
    r = await fhir.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Quispe"}],
                                               "identifier": [{"system": DNI, "value": dni}]})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def referral(n: int, patient: str, clinic: str = "clinic-a", **more) -> dict:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "identifier": [{"system": "https://puente.example.org/referral", "value": f"r-{n}"}],
            "subject": {"reference": f"Patient/{patient}"}, "performer": [{"reference": f"Organization/{clinic}"}],
            **more}


def arrived(clinic: ClinicSimulator, resource_type: str = "ServiceRequest", puente: str = PUENTE) -> list[str]:
    """Puente's ids of the resources created at the clinic, in the order the clinic created them."""
    system = f"{puente}/{resource_type}"
    stored = clinic.ehr.store.get(resource_type, {})
    return [i["value"] for kind, cid in clinic.ehr.created if kind == resource_type
            for i in stored[cid].get("identifier") or [] if i.get("system") == system]


async def attempts(database_url: str, **where) -> list:
    a = partner_attempts
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(a).order_by(a.c.pk)
            for column, value in where.items():
                query = query.where(a.c[column] == value)
            return list((await connection.execute(query)).all())
    finally:
        await engine.dispose()


async def outbox_states(database_url: str) -> dict[str, int]:
    o = partner_outbox
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return dict((await connection.execute(select(o.c.state, func.count()).group_by(o.c.state))).all())
    finally:
        await engine.dispose()


async def test_500_referrals_reach_the_clinic_once_each_in_order_through_a_restart(fhir, clinic, database_url,
                                                                                    tmp_path):
    await add_partner(database_url, clinic, tmp_path)
    patient = await a_patient(fhir)
    created: list[str] = []

    async def send(first: int, last: int) -> None:
        for n in range(first, last):
            r = await fhir.post("/fhir/ServiceRequest", json=referral(n, patient))
            assert r.status_code == 201, r.text
            created.append(r.json()["id"])

    await send(0, 150)
    await clinic.stop()  # the clinic's server goes down in the middle of the stream
    await send(150, 300)

    async def refused() -> bool:
        return any(a.status_code is None for a in await attempts(database_url))

    await until(refused)
    await clinic.start()
    clinic.ehr.lose_acks, clinic.ehr.slow_seconds = 3, 3.5  # committed, answered after Puente's 3 s timeout
    await send(300, 500)

    async def everything() -> bool:
        return len(set(arrived(clinic))) >= 500

    async def all_acknowledged() -> bool:
        return await outbox_states(database_url) == {"delivered": 500}

    await until(everything, 180)
    await until(all_acknowledged)
    assert arrived(clinic) == created  # each exactly once, in Puente's order
    assert len(clinic.ehr.resources("Patient")) == 1  # found again by its DNI 499 times
    assert clinic.ehr.transactions > 500, "no Bundle was sent twice: the test did not test repeats"
    pushes = await attempts(database_url, phase="push")
    failed = [a for a in pushes if a.status_code is None]
    assert failed and len(pushes) >= 500 + len(failed)  # every attempt recorded, the failed ones too


async def test_the_bundle_is_conditional_creates_of_what_the_clinic_may_read(fhir, clinic, database_url, tmp_path):
    await add_partner(database_url, clinic, tmp_path)
    patient = await a_patient(fhir)
    hb = (await fhir.post("/fhir/Observation", json={
        "resourceType": "Observation", "status": "final", "code": {"text": "hemoglobin"},
        "subject": {"reference": f"Patient/{patient}"}, "valueQuantity": {"value": 7.1, "unit": "g/dL"}})).json()
    sr = (await fhir.post("/fhir/ServiceRequest", json=referral(
        1, patient, supportingInfo=[{"reference": f"Observation/{hb['id']}"}],
        requester={"reference": "Practitioner/chw-1"}))).json()

    async def one() -> bool:
        return arrived(clinic) == [sr["id"]]

    await until(one)
    [pushed] = clinic.ehr.resources("ServiceRequest")
    [clinic_patient] = clinic.ehr.resources("Patient")
    [observation] = clinic.ehr.resources("Observation")
    assert pushed["subject"]["reference"] == f"Patient/{clinic_patient['id']}"  # resolved in the transaction
    assert pushed["supportingInfo"][0]["reference"] == f"Observation/{observation['id']}"
    assert observation["subject"]["reference"] == f"Patient/{clinic_patient['id']}"
    assert pushed["requester"]["reference"] == f"{PUENTE}/Practitioner/chw-1"  # not the clinic's: Puente's URL
    assert pushed["performer"][0]["reference"] == f"{PUENTE}/Organization/clinic-a"
    assert {"system": f"{PUENTE}/ServiceRequest", "value": sr["id"]} in pushed["identifier"]
    assert {"system": DNI, "value": "40000001"} in clinic_patient["identifier"]


async def test_a_referral_for_another_organization_is_never_pushed_to_this_partner(fhir, clinic, database_url,
                                                                                   tmp_path):
    other = ClinicSimulator()
    await other.start()
    try:
        await add_partner(database_url, clinic, tmp_path, name="a", organization="Organization/clinic-a")
        await add_partner(database_url, other, tmp_path, name="b", organization="Organization/clinic-b")
        patient = await a_patient(fhir)
        sent = {}
        for n, org in enumerate(["clinic-a", "clinic-b", "clinic-c", "clinic-a", "clinic-b"]):
            sent.setdefault(org, []).append((await fhir.post("/fhir/ServiceRequest",
                                                              json=referral(n, patient, org))).json()["id"])
        draft = (await fhir.post("/fhir/ServiceRequest", json=referral(9, patient, status="draft"))).json()

        async def both() -> bool:
            return len(arrived(clinic)) == 2 and len(arrived(other)) == 2

        await until(both)
        await asyncio.sleep(0.5)
        assert arrived(clinic) == sent["clinic-a"]
        assert arrived(other) == sent["clinic-b"]
        # A draft is not a referral yet; confirming it sends it.
        r = await fhir.put(f"/fhir/ServiceRequest/{draft['id']}", json={**draft, "status": "active"})
        assert r.status_code == 200, r.text

        async def confirmed() -> bool:
            return arrived(clinic) == [*sent["clinic-a"], draft["id"]]

        await until(confirmed)
        await fhir.put(f"/fhir/ServiceRequest/{draft['id']}", json={**r.json(), "note": [{"text": "changed"}]})
        await asyncio.sleep(0.5)
        assert await outbox_states(database_url) == {"delivered": 5}  # a change of a pushed referral: no push
    finally:
        await other.stop()


async def test_a_bad_key_is_refused_recorded_and_delivery_resumes_when_the_clinic_registers_the_right_one(
        fhir, clinic, database_url, tmp_path):
    wrong = generate_key(tmp_path / "someone-else.pem")
    _, key = await add_partner(database_url, clinic, tmp_path, registered=wrong)
    patient = await a_patient(fhir)
    sr = (await fhir.post("/fhir/ServiceRequest", json=referral(1, patient))).json()

    async def refused_twice() -> bool:
        return len([a for a in await attempts(database_url, phase="token") if a.error]) >= 2

    await until(refused_twice)
    assert clinic.ehr.created == [] and clinic.ehr.transactions == 0
    refusals = [t for t in clinic.ehr.token_requests if not t.granted]
    assert refusals and all("signature does not verify" in (t.error or "") for t in refusals)
    token_attempts = await attempts(database_url, phase="token")
    assert token_attempts[0].status_code == 401 and "invalid_client" in token_attempts[0].error
    assert await outbox_states(database_url) == {"pending": 1}  # nothing lost

    clinic.ehr.register("puente", key.jwks())  # the clinic fixes its registration

    async def delivered() -> bool:
        return arrived(clinic) == [sr["id"]] and await outbox_states(database_url) == {"delivered": 1}

    await until(delivered)


async def test_a_wrong_client_id_is_refused_and_delivery_resumes_once_corrected(fhir, clinic, database_url,
                                                                               tmp_path):
    partner, key = await add_partner(database_url, clinic, tmp_path, client_id="not-the-one")
    del clinic.ehr.clients["not-the-one"]
    clinic.ehr.register("puente", key.jwks())  # the clinic's record: Puente's client is "puente"
    patient = await a_patient(fhir)
    sr = (await fhir.post("/fhir/ServiceRequest", json=referral(1, patient))).json()

    async def refused_twice() -> bool:
        return len([a for a in await attempts(database_url, phase="token") if a.error]) >= 2

    await until(refused_twice)
    assert clinic.ehr.created == []
    assert {t.error for t in clinic.ehr.token_requests} == {"unknown client 'not-the-one'"}
    engine = create_engine(database_url)
    try:
        listed = await partners.listed(engine)
        assert listed[0]["pending"] == 1 and "invalid_client" in listed[0]["last_error"]
        await partners.change(engine, partner.name, client_id="puente")  # `puente partners update`
    finally:
        await engine.dispose()

    async def delivered() -> bool:
        return arrived(clinic) == [sr["id"]]

    await until(delivered)


async def test_tokens_are_cached_and_a_401_gets_a_new_one(fhir, clinic, database_url, tmp_path):
    await add_partner(database_url, clinic, tmp_path)
    patient = await a_patient(fhir)
    ids = [(await fhir.post("/fhir/ServiceRequest", json=referral(n, patient))).json()["id"] for n in range(10)]

    async def ten() -> bool:
        return len(arrived(clinic)) == 10

    await until(ten)
    # One token per worker, kept for its lifetime: whichever workers pushed (every app of the test
    # session shares the outbox, so not only this app's two), none asked twice. The clinic grants a
    # token a moment before its worker records the attempt: compare once both sides have settled.
    granted: list = []
    tokens: Counter = Counter()

    async def settled() -> bool:
        nonlocal granted, tokens
        granted = [t for t in clinic.ehr.token_requests if t.granted]
        tokens = Counter(a.worker for a in await attempts(database_url, phase="token") if a.status_code == 200)
        return bool(granted) and len(granted) == sum(tokens.values())

    await until(settled)
    assert max(tokens.values()) == 1
    clinic.ehr.revoke_tokens()  # the clinic restarts and forgets its tokens
    ids.append((await fhir.post("/fhir/ServiceRequest", json=referral(10, patient))).json()["id"])

    async def eleven() -> bool:
        return arrived(clinic) == ids

    await until(eleven)
    assert len([t for t in clinic.ehr.token_requests if t.granted]) > len(granted)

    # A worker holding a revoked token gets a 401 on its next request (a push, or a pull of Task
    # updates), recorded; it asks for a new token and sends the same request again.
    async def a_401() -> bool:
        return any(a.status_code == 401 for a in await attempts(database_url))

    await until(a_401)
    await asyncio.sleep(0.3)
    recorded = await attempts(database_url)
    first = next(a for a in recorded if a.status_code == 401)
    after = [a for a in recorded if a.worker == first.worker and a.pk > first.pk]
    assert [(a.phase, a.status_code) for a in after[:2]] == [("token", 200), (first.phase, 200)]
    assert clinic.ehr.refused_requests >= 1
    assert clinic.ehr.used_jti and len(clinic.ehr.used_jti) == len([t for t in clinic.ehr.token_requests
                                                                     if t.granted])  # a fresh jti each time


def _referral_bundle(patient: str, n: int) -> dict:
    sr = referral(n, patient)
    task = {"resourceType": "Task", "status": "requested", "intent": "order",
            "focus": {"reference": f"urn:uuid:00000000-0000-0000-0000-00000000000{n}"},
            "for": {"reference": f"Patient/{patient}"}, "requester": {"reference": "Practitioner/chw-1"},
            "owner": {"reference": "Organization/clinic-a"}}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{n}", "resource": sr,
         "request": {"method": "POST", "url": "ServiceRequest"}},
        {"resource": task, "request": {"method": "POST", "url": "Task"}}]}


async def _referral_with_task(fhir, patient: str, n: int) -> tuple[str, str]:
    r = await fhir.post("/fhir", json=_referral_bundle(patient, n))
    assert r.status_code == 200, r.text
    locations = [e["response"]["location"] for e in r.json()["entry"]]
    return locations[0].split("/")[1], locations[1].split("/")[1]


async def test_the_clinic_completing_its_task_completes_the_referral_in_puente(fhir, clinic, database_url, tmp_path):
    await add_partner(database_url, clinic, tmp_path)
    patient = await a_patient(fhir)
    sr_id, task_id = await _referral_with_task(fhir, patient, 1)

    async def pushed() -> bool:
        return arrived(clinic, "Task") == [task_id] and await outbox_states(database_url) == {"delivered": 1}

    await until(pushed)
    assert arrived(clinic) == [sr_id]  # the Task and its ServiceRequest: one push
    clinic.ehr.update_task(f"{PUENTE}/Task", task_id, status="completed",
                           businessStatus={"text": "atendido"},
                           output=[{"type": {"text": "outcome"}, "valueReference": {"reference": "Observation/77"}}])

    async def completed() -> bool:
        return (await fhir.get(f"/fhir/Task/{task_id}")).json()["status"] == "completed"

    await until(completed)
    task = (await fhir.get(f"/fhir/Task/{task_id}")).json()
    assert task["businessStatus"] == {"text": "atendido"}
    assert task["output"][0]["valueReference"]["reference"] == f"{clinic.ehr_base}/Observation/77"
    assert (await fhir.get(f"/fhir/ServiceRequest/{sr_id}")).json()["status"] == "completed"  # the lifecycle
    history = (await fhir.get(f"/fhir/Task/{task_id}/_history")).json()
    statuses = [e["resource"]["status"] for e in reversed(history["entry"])]
    assert statuses == ["requested", "accepted", "in-progress", "completed"]  # the owner's moves, one by one
    await asyncio.sleep(0.5)  # polled again and again: what is the same is not written again
    assert len((await fhir.get(f"/fhir/Task/{task_id}/_history")).json()["entry"]) == 4


async def test_a_clinic_update_the_rules_refuse_is_recorded_not_applied(fhir, clinic, database_url, tmp_path):
    await add_partner(database_url, clinic, tmp_path)
    patient = await a_patient(fhir)
    _, task_id = await _referral_with_task(fhir, patient, 2)

    async def pushed() -> bool:
        return arrived(clinic, "Task") == [task_id]

    await until(pushed)
    task = (await fhir.get(f"/fhir/Task/{task_id}")).json()
    r = await fhir.put(f"/fhir/Task/{task_id}", json={**task, "status": "cancelled"})  # the CHW calls it off
    assert r.status_code == 200, r.text
    clinic.ehr.update_task(f"{PUENTE}/Task", task_id, status="completed")

    async def refused() -> bool:
        return any(a.error and task_id in a.error for a in await attempts(database_url, phase="apply"))

    await until(refused)
    # Every app of the test session pulls the clinic's updates too: each refusal is recorded, all alike.
    refusals = [a for a in await attempts(database_url, phase="apply") if task_id in (a.error or "")]
    assert refusals and all(a.status_code == 409 and "task-state-machine" in a.error for a in refusals)
    assert (await fhir.get(f"/fhir/Task/{task_id}")).json()["status"] == "cancelled"


# Every process that pushes must say the same PUENTE_BASE_URL (Puente's identifier systems derive
# from it): the served ones here, and this session's app (tests.conftest.BASE), whose workers share
# the outbox with them.
SERVED = {"PUENTE_EXCHANGE_POLL_SECONDS": "0.02", "PUENTE_EXCHANGE_BACKOFF_SECONDS": "0.05",
          "PUENTE_EXCHANGE_BACKOFF_MAX_SECONDS": "0.4", "PUENTE_EXCHANGE_TIMEOUT_SECONDS": "5",
          "PUENTE_BASE_URL": "http://testserver"}


async def test_kill_9_of_serve_mid_stream_loses_no_push(database_url, clinic, tmp_path):
    await empty_all_tables(database_url)
    await add_partner(database_url, clinic, tmp_path)
    created: list[str] = []

    async def send(base: str, first: int, last: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for n in range(first, last):
                r = await http.post("/fhir/ServiceRequest", json=referral(n, "p1"))
                assert r.status_code == 201, r.text
                created.append(r.json()["id"])

    with serve(database_url, workers=1, extra_env=SERVED) as server:
        await send(server.base, 0, 60)
        await clinic.stop()  # a backlog builds up in the partner's outbox...
        await send(server.base, 60, 120)
        server.crash()  # ...and the server dies with it
    assert len(arrived(clinic)) < 120, "everything was pushed before the kill"
    await clinic.start()
    with serve(database_url, workers=1, extra_env=SERVED) as server:
        await send(server.base, 120, 200)

        async def everything() -> bool:
            return len(set(arrived(clinic))) >= 200

        await until(everything, 180)
    assert arrived(clinic) == created  # once each, in order
