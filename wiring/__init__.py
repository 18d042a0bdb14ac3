"""Who hears about writes, decided in one place for the app, the CLI and the tests.

Every consumer of writes subscribes here to storage's write-event seam (`storage.write_events`),
never through a path of its own into storage: the programme's rules today, and the exchange
package's subscription matching (outbox rows in the writing transaction) next.
"""

from __future__ import annotations

import rules
from rules.config import ClinicalConfig
from settings import Settings
from storage.write_events import NO_SUBSCRIBERS, WriteSubscribers


def write_subscribers(settings: Settings) -> WriteSubscribers:
    config = ClinicalConfig.from_settings(settings)
    if not config.hooks_enabled:
        return NO_SUBSCRIBERS
    return rules.subscribers(config)
