"""Synthetic, deterministic La Esperanza CHW programme data (FHIR R4) for demos, tests and benchmarks."""

from seed.bundles import transaction_bundle, transaction_bundles, unit_bundles
from seed.generator import (
    DEFAULT_AS_OF,
    DEFAULT_CHILDREN,
    DEFAULT_SEED,
    Unit,
    children_for_resources,
    generate_programme,
    generate_units,
)
from seed.load import load, load_units

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_CHILDREN",
    "DEFAULT_SEED",
    "Unit",
    "children_for_resources",
    "generate_programme",
    "generate_units",
    "load",
    "load_units",
    "transaction_bundle",
    "transaction_bundles",
    "unit_bundles",
]
