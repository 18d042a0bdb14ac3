"""Shared bits for the search tests: the reference data location and resource loading."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.fhir_json import loads

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"
SYNTHEA = SHARED / "synthea-r4"
FHIR_R4 = SHARED / "fhir-r4"


def synthea_bundles() -> list[Path]:
    if not SYNTHEA.is_dir():
        pytest.skip(f"reference data not found at {SYNTHEA}")
    return sorted(SYNTHEA.glob("*.json"))


def bundle_resources(path: Path) -> list[dict[str, Any]]:
    bundle = loads(path.read_bytes())
    return [entry["resource"] for entry in bundle.get("entry", [])]


def resource(text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = loads(text)
    return parsed


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
