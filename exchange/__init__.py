"""Referral exchange: what leaves the building, and the referral rules it depends on.

Fed only by storage's write-event seam (`storage.write_events`), wired in `wiring`:

- `TaskLifecycle` (a WriteHook) holds every write of a referral Task to the R4 state machine and to
  who may make each move, and moves the ServiceRequest when its Task ends;
- `HeaderMasking` (an EnrichHook) stores Subscriptions with their header values masked
  (header_secrets: the values live only in the exchange's own table);
- `SubscriptionMatcher` (a WriteHook) keeps rest-hook Subscriptions registered (their endpoints
  checked against the operator's policy, endpoints), and for each write a subscription's criteria
  match within its owner's access (criteria, matching), or each deletion of a resource it told of
  (deletions), leaves an outbox row in the write's transaction;
- `topics` serves topic-based Subscriptions (the Subscriptions R5 Backport IG): their triggers are
  rows the matcher runs like any criteria, `notifications` shapes what they are sent (history
  Bundles with a SubscriptionStatus), `heartbeats` keeps quiet channels alive;
- `PartnerMatcher` (a WriteHook, exchange.push) leaves a row in the partner outbox, in the write's
  transaction, for each referral newly addressed to a partner clinic's Organization (`puente
  partners add`, exchange.partners);
- `delivery.Workers`, started with the app (or by `puente exchange work`), deliver the outbox after
  the commit, in order per subscription, with retries and a record of every attempt; beside them,
  `push.PartnerWorker`s push referrals to partner clinics as transaction Bundles of conditional
  creates with SMART Backend Services tokens (exchange.tokens), in order per partner, with the same
  retries, and bring the clinics' Task updates back as the clinic (exchange.pull_back).
"""

from __future__ import annotations

from exchange import live_subscriptions, partner_tables, tables
from exchange.endpoints import EndpointPolicy
from exchange.header_secrets import HeaderMasking
from exchange.lifecycle import TaskLifecycle
from exchange.matching import SubscriptionMatcher
from exchange.push import PartnerMatcher
from exchange.topics import REFERRAL_TOPIC, TOPIC_CANONICAL
from settings import Settings
from storage.write_events import WriteSubscribers

# What the CapabilityStatement says of the types whose behaviour the exchange adds to.
CAPABILITY_NOTES = {
    "Subscription": "R4 rest-hook channels: criteria as a search URL; payload absent (a ping POSTed to the "
                    "endpoint) or application/fhir+json (the resource PUT at [endpoint]/[type]/[id]); header "
                    "values sent as given and write-only (stored and read back as 'Name: ***'; sending the mask "
                    "back keeps the stored value); endpoints only on public addresses unless the operator lists "
                    "them (checked on write and on each delivery); a deletion is announced to the subscriptions "
                    "notified of the resource before (a DELETE at [endpoint]/[type]/[id], or a ping with "
                    "X-Puente-Deleted); a handshake ping on creation (requested -> active), error while the "
                    "endpoint fails, active again when it answers. Notifications never leave what the "
                    "subscription's creator may read; each carries X-Puente-Subscription and "
                    "X-Puente-Event-Number (1, 2, ... in order; at-least-once: drop repeats by number). "
                    "Topic-based (Subscriptions R5 Backport IG, backport-subscription): criteria "
                    f"{REFERRAL_TOPIC} (a referral Task or ServiceRequest created or changed), filtered "
                    "by a backport-filter-criteria Task?owner=Organization/[id] or "
                    "ServiceRequest?performer=Organization/[id]; rest-hook, application/fhir+json, payload "
                    "content empty | id-only | full-resource; heartbeat period, timeout, max count (one event "
                    "per notification); history Bundles with a SubscriptionStatus Parameters first; "
                    "Subscription/[id]/$status and $events (catch up from the stored events).",
    "Task": "Referral Tasks follow the R4 state machine (task.html); the owner clinic accepts, rejects, starts, "
            "completes or fails, the requester cancels; for, focus and requester are fixed after creation; "
            "a completed Task completes its ServiceRequest, a cancelled one revokes it. Referrals addressed to a "
            "partner clinic's Organization are pushed to its FHIR server, and its Task updates come back under "
            "the same rules.",
}

# The topics a Subscription may name (capabilitystatement-subscriptiontopic-canonical).
CAPABILITY_EXTENSIONS = {"Subscription": [{"url": TOPIC_CANONICAL, "valueCanonical": REFERRAL_TOPIC}]}


def subscribers(endpoints: EndpointPolicy | None = None) -> WriteSubscribers:
    """The exchange's part of the write-event seam; `endpoints` is where subscriptions may send
    (default: public addresses only)."""
    return WriteSubscribers(enrichers=(HeaderMasking(),),
                            hooks=(TaskLifecycle(), SubscriptionMatcher(endpoints or EndpointPolicy()),
                                   PartnerMatcher()),
                            questions=(live_subscriptions.ASKED,))


def endpoint_policy(settings: Settings) -> EndpointPolicy:
    return EndpointPolicy.parse(settings.subscription_endpoints, public=settings.subscription_public_endpoints)


__all__ = ["CAPABILITY_EXTENSIONS", "CAPABILITY_NOTES", "EndpointPolicy", "PartnerMatcher", "SubscriptionMatcher",
           "TaskLifecycle", "endpoint_policy", "partner_tables", "subscribers", "tables"]
