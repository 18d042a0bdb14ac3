"""The programme's write-time rules: what follows from each measurement, in the writing transaction.

Storage calls them through the write-event seam (`storage.write_events`); `wiring` subscribes them:

- before a hemoglobin Observation is stored, its anaemia interpretation (WHO 2024, altitude and
  pregnancy adjusted) is added to it (`HemoglobinInterpreter`, an EnrichHook);
- after measurements are stored, the day's growth z-scores, the Flags (severe anaemia, SAM, severe
  stunting) and draft referrals are recorded or withdrawn (`DerivedFacts`, a WriteHook).

The pure clinical knowledge (thresholds, WHO tables, Peru's schedule) lives in `clinical/`; this
package turns FHIR into its inputs and its answers back into FHIR. The $operations that read the
same facts ($nutrition-status, $growth, $immds-forecast) are served by `api.interactions.clinical`.
"""

from __future__ import annotations

from rules.config import ClinicalConfig
from rules.hemoglobin import HemoglobinInterpreter
from rules.hooks import DerivedFacts
from storage.write_events import WriteSubscribers


def subscribers(config: ClinicalConfig) -> WriteSubscribers:
    """The rules as write subscribers: the interpretation before a write, derived facts after it."""
    return WriteSubscribers(enrichers=(HemoglobinInterpreter(config),), hooks=(DerivedFacts(),))


__all__ = ["ClinicalConfig", "subscribers"]
