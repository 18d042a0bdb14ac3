"""Group the generated stream into small FHIR transaction Bundles for loading over HTTP.

Entries are `PUT {type}/{id}` (update-as-create with the generator's stable ids), so references
between resources hold without `urn:uuid` rewriting and a reload is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from seed.generator import Unit

Resource = dict[str, Any]
HOUSEHOLD_BUNDLE_ENTRIES = 8


def transaction_bundle(resources: Iterable[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def unit_bundles(unit: Unit, max_entries: int = HOUSEHOLD_BUNDLE_ENTRIES) -> list[Resource]:
    """One unit's resources as consecutive Bundles; send them in order (later ones refer to earlier)."""
    rs = unit.resources
    return [transaction_bundle(rs[i:i + max_entries]) for i in range(0, len(rs), max_entries)]


def transaction_bundles(units: Iterable[Unit], max_entries: int = HOUSEHOLD_BUNDLE_ENTRIES) -> Iterator[Resource]:
    """Household transaction Bundles of at most `max_entries` entries, in dependency order."""
    for unit in units:
        yield from unit_bundles(unit, max_entries)
