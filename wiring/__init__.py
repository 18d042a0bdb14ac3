"""Who hears about writes, decided in one place for the app, the CLI and the tests.

Every consumer of writes subscribes here to storage's write-event seam (`storage.write_events`),
never through a path of its own into storage: the programme's rules today, and the exchange
package's subscription matching (outbox rows in the writing transaction) next.
"""

from __future__ import annotations

import exchange
import rules
from rules.config import ClinicalConfig
from settings import Settings
from storage.write_events import NO_SUBSCRIBERS, WriteSubscribers


def write_subscribers(settings: Settings) -> WriteSubscribers:
    """The referral exchange always listens (its lifecycle rules refuse writes); the clinical rules
    unless switched off. The exchange runs first: a refused Task move costs no derived work."""
    config = ClinicalConfig.from_settings(settings)
    clinical = rules.subscribers(config) if config.hooks_enabled else NO_SUBSCRIBERS
    referrals = exchange.subscribers(exchange.endpoint_policy(settings))
    return WriteSubscribers(enrichers=referrals.enrichers + clinical.enrichers,
                            hooks=referrals.hooks + clinical.hooks,
                            questions=referrals.questions + clinical.questions)
