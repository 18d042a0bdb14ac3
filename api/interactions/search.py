"""search (FHIR R4 search.html)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["search"])
