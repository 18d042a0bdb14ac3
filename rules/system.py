"""The rules' own repository: same connection and transaction as the request, server authority.

Derived facts (z-scores, Flags, referral drafts) are the server's, not the caller's: a CHW app allowed
to write Observations must not need Flag or ServiceRequest scopes for them to be recorded, and the
context the rules read (the Patient, its Location, pregnancy records) is read whatever the caller's
scopes. Nothing read this way is returned to the caller except through the derived facts.
"""

from __future__ import annotations

from collections.abc import Iterable

from auth.principal import Principal
from storage.repository import FhirRepository

CLINICAL_RULES = Principal(subject="puente-clinical-rules", is_admin=True, name="Puente clinical rules")


def rules_repository(repository: FhirRepository) -> FhirRepository:
    """The rules' view of a request's transaction: same connection, server authority; what they
    write still runs the write subscribers, so a derived fact is audited and indexed like any other."""
    if repository.principal is CLINICAL_RULES:
        return repository
    return repository.with_principal(CLINICAL_RULES)


async def serialise_patients(repository: FhirRepository, patient_ids: Iterable[str]) -> None:
    """Until the transaction ends, other transactions deriving facts for these patients wait.

    PostgreSQL only (transaction-scoped advisory locks, one statement); SQLite already runs one
    writer at a time.
    """
    await repository.lock(*(f"clinical:Patient/{patient_id}" for patient_id in patient_ids))
