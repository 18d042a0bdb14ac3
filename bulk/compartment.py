"""The R4 Patient compartment: which reference parameters put a resource in a patient's record.

From bulk/data/patient_compartment.json, derived from HL7's CompartmentDefinition by
tools/generate_patient_compartment.py. Only parameters that Puente indexes as references can be
followed (they all are: every R4 reference parameter is indexed in search_reference).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, false, or_, select

from storage.tables import search_reference

_DATA = Path(__file__).parent / "data" / "patient_compartment.json"


@functools.cache
def compartment_params() -> dict[str, tuple[str, ...]]:
    """{resource type: the parameters that name the patient}, Patient itself included ("link")."""
    types: dict[str, list[str]] = json.loads(_DATA.read_text())["types"]
    return {resource_type: tuple(params) for resource_type, params in types.items()}


def in_compartment(resource_type: str) -> bool:
    return resource_type in compartment_params()


def of_patients(resource_type: str, table: FromClause, patient_ids: Select[Any] | list[str]) -> ColumnElement[bool]:
    """Rows of `table` (resources) of `resource_type` in the compartment of one of `patient_ids`.

    A Patient is in its own compartment; other types through their compartment parameters."""
    if resource_type == "Patient":
        return table.c.id.in_(patient_ids)
    params = compartment_params().get(resource_type)
    if not params:
        return false()
    r = search_reference
    referring = select(r.c.resource_pk).where(
        r.c.resource_type == resource_type,
        r.c.param.in_(list(params)),
        r.c.target_type == "Patient",
        r.c.target_id.in_(patient_ids),
    )
    return or_(table.c.pk.in_(referring.correlate(None)))
