"""Index rows for one resource (replaced by the registry-driven extractor)."""

from __future__ import annotations

from typing import Any


def index_rows(pk: int, resource_type: str, resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {}
