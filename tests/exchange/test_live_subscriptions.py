"""The live subscriptions are read once per write transaction (exchange.live_subscriptions), and the
answer never outlives what it was read from: a Subscription written in the transaction is matched
by the writes after it, and one whose savepoint rolled back is not. Both databases, counted at the
driver (tests.storage.conftest.statements_sent)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import exchange
from auth.principal import LOCAL_EXPLORER
from exchange import tables
from storage.database import transaction
from storage.repository import FhirRepository
from tests.exchange.test_matching_cost import subscription
from tests.exchange.test_rest_hook import referral
from tests.storage.conftest import statements_sent


def _lookups(seen: list[str]) -> int:
    asked = "SELECT exchange_subscriptions.id, exchange_subscriptions.resource_type,"
    return sum(1 for s in seen if s.startswith(asked))


def _told_lookups(seen: list[str]) -> int:
    return sum(1 for s in seen if "FROM exchange_outbox JOIN exchange_subscriptions" in s)


async def _notified(engine: AsyncEngine) -> set[tuple[str, str, str]]:
    o = tables.outbox
    async with engine.connect() as connection:
        rows = await connection.execute(select(o.c.subscription_id, o.c.kind, o.c.resource_id)
                                        .where(o.c.kind != "handshake"))
        return {(row.subscription_id, row.kind, row.resource_id) for row in rows}


async def test_one_lookup_per_transaction_and_type(engine: AsyncEngine, backend: str) -> None:
    async with transaction(engine, write=True) as connection:
        watcher = await FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers()).create(
            subscription("ServiceRequest?performer=Organization/clinic-a"))
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers())
        async with statements_sent(engine, repository) as seen:
            first = await repository.create(referral(1))
            second = await repository.create(referral(2))
            patient = await repository.create({"resourceType": "Patient"})
            await repository.delete("Patient", patient.version.id)  # no live subscription watches Patients
            await repository.delete("ServiceRequest", first.version.id)
    # ServiceRequest asked once for three writes (on PostgreSQL by the first create's own insert),
    # Patient once for its create and its deletion; only the watched type's deletion looks for who
    # was told
    assert _lookups(list(seen)) == (1 if backend == "postgres" else 2), seen
    assert _told_lookups(list(seen)) == 1, seen
    watcher_id = watcher.version.id
    assert await _notified(engine) >= {(watcher_id, "notification", first.version.id),
                                       (watcher_id, "notification", second.version.id),
                                       (watcher_id, "deletion", first.version.id)}


async def test_a_subscription_written_in_the_transaction_is_matched_after_it(engine: AsyncEngine) -> None:
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers())
        before = await repository.create(referral(10, "clinic-b"))  # asks, and learns there is none
        watcher = await repository.create(subscription("ServiceRequest?performer=Organization/clinic-b"))
        after = await repository.create(referral(11, "clinic-b"))
    notified = await _notified(engine)
    assert (watcher.version.id, "notification", after.version.id) in notified
    assert (watcher.version.id, "notification", before.version.id) not in notified


async def test_a_subscription_rolled_back_with_its_savepoint_is_not_matched(engine: AsyncEngine) -> None:
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers())
        with pytest.raises(RuntimeError):
            async with repository.savepoint():
                await repository.create(subscription("ServiceRequest?performer=Organization/clinic-c"))
                await repository.create(referral(20, "clinic-c"))  # matched, inside the savepoint
                raise RuntimeError("the batch entry failed")
        kept = await repository.create(referral(21, "clinic-c"))
    async with engine.connect() as connection:
        s = tables.subscriptions
        assert (await connection.execute(select(s.c.id).where(s.c.criteria.contains("clinic-c")))).all() == []
    assert not [n for n in await _notified(engine) if n[2] == kept.version.id]


async def test_a_single_create_asks_with_its_insert(engine: AsyncEngine, backend: str) -> None:
    """On PostgreSQL the create's own insert statement answers the lookup: BEGIN and the insert,
    then only what a match writes; the answer is the same as the lookup's (matched or not)."""
    async with transaction(engine, write=True) as connection:
        watcher = await FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers()).create(
            subscription("ServiceRequest?performer=Organization/clinic-d"))
    written = {}
    for name, body in (("unwatched", {"resourceType": "Patient"}), ("watched", referral(30, "clinic-d")),
                       ("unmatched", referral(31, "clinic-e"))):
        async with transaction(engine, write=True) as connection:
            repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers())
            async with statements_sent(engine, repository) as seen:
                written[name] = (await repository.create(body)).version.id
        if backend == "postgres":
            ours = [s.split()[0] for s in seen if "typeinfo_tree" not in s]
            assert _lookups(list(seen)) == 0, seen
            if name == "unwatched":  # (a referral also asks whether its clinic is a push partner)
                assert ours == ["BEGIN;", "WITH"], seen
    notified = {resource_id for subscription_id, kind, resource_id in await _notified(engine)
                if subscription_id == watcher.version.id and kind == "notification"}
    assert notified == {written["watched"]}
