"""The rules' own repository: same connection and transaction as the request, server authority.

Derived facts (z-scores, Flags, referral drafts) are the server's, not the caller's: a CHW app allowed
to write Observations must not need Flag or ServiceRequest scopes for them to be recorded, and the
context the rules read (the Patient, its Location, pregnancy records) is read whatever the caller's
scopes. Nothing read this way is returned to the caller except through the derived facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from storage import search as storage_search
from storage.repository import EnrichHook, FhirRepository, WriteHook

CLINICAL_RULES = Principal(subject="puente-clinical-rules", is_admin=True, name="Puente clinical rules")


async def _find_matches(
    connection: AsyncConnection, principal: Principal, resource_type: str, query: Any
) -> list[tuple[int, str]]:
    # Looked up at call time, so the search that replaces the current one is picked up as is.
    return await storage_search.find_matches(connection, principal, resource_type, list(query))


class RulesRepositories:
    """Makes the rules' repository for a request's repository (hooks see every write they cause)."""

    def __init__(self, hooks: Sequence[WriteHook], enrichers: Sequence[EnrichHook]) -> None:
        self._hooks = hooks
        self._enrichers = enrichers

    def __call__(self, repository: FhirRepository) -> FhirRepository:
        if repository.principal is CLINICAL_RULES:
            return repository
        return FhirRepository(
            repository.connection, CLINICAL_RULES, search=_find_matches, hooks=self._hooks, enrichers=self._enrichers
        )


async def serialise_patient(repository: FhirRepository, patient_id: str) -> None:
    """Until the transaction ends, other transactions deriving facts for this patient wait.

    PostgreSQL only (a transaction-scoped advisory lock); SQLite already runs one writer at a time.
    """
    if repository.connection.dialect.name != "postgresql":
        return
    key = hashlib.blake2b(f"clinical:Patient/{patient_id}".encode(), digest_size=8).digest()
    await repository.connection.execute(select(func.pg_advisory_xact_lock(int.from_bytes(key, "big", signed=True))))
