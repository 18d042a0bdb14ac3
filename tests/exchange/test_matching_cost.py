"""Matching subscriptions costs a bounded number of statements, whatever their number.

Counted at the driver (tests.storage.conftest.statements_sent) around a write of two referrals,
once with one subscription of each kind and once with six: equality criteria judged on the index
values, criteria left to SQL, owners who see everything and a clinic that sees its own. The answers
are checked too: the same outbox rows as the search engine's, within each owner's access.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import exchange
from auth.principal import LOCAL_EXPLORER, Principal
from exchange import tables
from storage.database import transaction
from storage.repository import FhirRepository
from tests.exchange.test_rest_hook import referral
from tests.storage.conftest import statements_sent

CLINIC = Principal(subject="clinic-a-client", client_id="clinic-a-client", organization="Organization/clinic-a",
                   scopes=frozenset({"system/ServiceRequest.rs", "system/Subscription.cruds"}))
# (owner, criteria with {n} making each copy's text its own, matches clinic A's referral, matches clinic B's)
KINDS = [
    (LOCAL_EXPLORER, "ServiceRequest?performer=Organization/clinic-a,Organization/other-{n}", True, False),
    (CLINIC, "ServiceRequest?performer=Organization/clinic-a,Organization/other-{n}", True, False),
    (LOCAL_EXPLORER, "ServiceRequest?status=active&_id:not=none-{n}", True, True),  # :not goes to SQL
    (CLINIC, "ServiceRequest?status=active&_id:not=none-{n}", True, False),  # B's is not the clinic's
    (LOCAL_EXPLORER, "ServiceRequest?intent=order&_tag=https://x.example|none-{n}", False, False),
    (CLINIC, "ServiceRequest?identifier=https://puente.example.org/referral|r-{n}x", False, False),
]


def subscription(criteria: str) -> dict:
    return {"resourceType": "Subscription", "status": "requested", "reason": "cost", "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": "https://clinic.example/fhir"}}


async def subscribe(engine: AsyncEngine, copies: range) -> dict[str, tuple[bool, bool]]:
    expected: dict[str, tuple[bool, bool]] = {}
    for n in copies:
        for owner, criteria, to_a, to_b in KINDS:
            async with transaction(engine, write=True) as connection:
                repository = FhirRepository(connection, owner, subscribers=exchange.subscribers())
                created = await repository.create(subscription(criteria.format(n=n)))
                expected[created.version.id] = (to_a, to_b)
    return expected


async def write_two_referrals(engine: AsyncEngine, n: int) -> tuple[list[str], list[str]]:
    """The statements of one transaction writing a referral to clinic A and one to B, and their ids."""
    async with transaction(engine, write=True) as connection:
        repository = FhirRepository(connection, LOCAL_EXPLORER, subscribers=exchange.subscribers())
        async with statements_sent(engine, repository) as seen:
            repository.defer_hooks()
            a = await repository.create(referral(n, "clinic-a"))
            b = await repository.create(referral(n + 1, "clinic-b"))
            await repository.run_deferred_hooks()
    return list(seen), [a.version.id, b.version.id]


async def announced(engine: AsyncEngine) -> dict[str, set[str]]:
    o = tables.outbox
    async with engine.connect() as connection:
        rows = (await connection.execute(select(o.c.subscription_id, o.c.resource_id)
                                         .where(o.c.kind == "notification"))).all()
    out: dict[str, set[str]] = {}
    for row in rows:
        out.setdefault(row.subscription_id, set()).add(row.resource_id)
    return out


async def test_matching_costs_the_same_statements_for_6_or_36_subscriptions(engine):
    # A first write pays once for what a connection learns (asyncpg's type introspection of the
    # lease-taking insert): made before any subscription, it announces nothing.
    await write_two_referrals(engine, 0)
    expected = await subscribe(engine, range(1))
    few, (a1, b1) = await write_two_referrals(engine, 100)
    expected.update(await subscribe(engine, range(1, 6)))
    many, (a2, b2) = await write_two_referrals(engine, 200)

    assert len(expected) == 6 * len(KINDS)
    assert len(many) == len(few), (len(few), len(many))
    seen = await announced(engine)
    for subscription_id, (to_a, to_b) in expected.items():
        wanted = ({a2} if to_a else set()) | ({b2} if to_b else set())
        assert seen.get(subscription_id, set()) - {a1, b1} == wanted, subscription_id
