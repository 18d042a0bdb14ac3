"""Search results as searchset Bundles (used by the search routes and by Bundle entries)."""

from __future__ import annotations

from typing import Any

from fhir_mappings.outcomes import NotImplementedYet
from storage.repository import FhirRepository


async def search_bundle(repository: FhirRepository, resource_type: str, query: list[tuple[str, str]]) -> dict[str, Any]:
    raise NotImplementedYet("search is being built")
