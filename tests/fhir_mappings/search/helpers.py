"""Shared bits for the search tests: resource loading and UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir_mappings.fhir_json import loads

ROOT = Path(__file__).resolve().parents[3]


def resource(text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = loads(text)
    return parsed


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
