"""FHIR <-> clinical rules: derived facts on write, and the clinical operations.

Wiring (api/app.py):
- `ClinicalConfig.from_settings()`: PUENTE_CLINICAL_HOOKS (on|off), PUENTE_DEFAULT_ALTITUDE_M;
- `clinical_hooks(config, write_hooks, enrichers)` -> (EnrichHook, WriteHook): the hemoglobin
  interpretation before a write, z-scores / Flags / draft referrals after it;
- `router` (GET Patient/{id}/$nutrition-status, $growth, $immds-forecast; POST /$immds-forecast),
  included before the generic interaction routers; `OPERATIONS` for the CapabilityStatement.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.clinical.config import ClinicalConfig
from api.clinical.hemoglobin import HemoglobinInterpreter
from api.clinical.hooks import DerivedFacts
from api.clinical.routes import OPERATIONS, router
from api.clinical.system import RulesRepositories
from storage.repository import EnrichHook, WriteHook


def clinical_hooks(
    config: ClinicalConfig, write_hooks: Sequence[WriteHook], enrichers: Sequence[EnrichHook]
) -> tuple[EnrichHook, WriteHook]:
    """The two hooks; `write_hooks`/`enrichers` are the app's lists (the rules' own writes run them too)."""
    rules = RulesRepositories(write_hooks, enrichers)
    return HemoglobinInterpreter(config, rules), DerivedFacts(rules)


__all__ = ["OPERATIONS", "ClinicalConfig", "clinical_hooks", "router"]
