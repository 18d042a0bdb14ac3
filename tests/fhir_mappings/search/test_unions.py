"""Union parameters (Observation's combo-*) store no rows: their parts' rows must be exactly theirs."""

from __future__ import annotations

from fhir_mappings.search.extract import extract_index_values
from fhir_mappings.search.registry import registry
from fhir_mappings.search.rows import CompositeRow, IndexValue
from fhir_mappings.search.unions import UNIONS, stored_as
from storage.search_rows import index_rows
from tests.fixtures.reference_data import synthea_resources

from . import resources as r
from .helpers import resource


def _unnamed(row: IndexValue) -> IndexValue:
    """The row without the parameter codes that name it (what a stored row keeps of it)."""
    if isinstance(row, CompositeRow):
        return CompositeRow("", tuple(_unnamed(c) for c in row.components))
    return row._replace(param="")


def _values(found: list[IndexValue], *params: str) -> set[IndexValue]:
    return {_unnamed(row) for row in found if row.param in params}


def test_each_union_is_its_parts_in_the_r4_definitions() -> None:
    for resource_type, unions in UNIONS.items():
        for code, parts in unions.items():
            union, *defined = (registry().get(resource_type, c) for c in (code, *parts))
            assert all(p.type == union.type for p in defined), code
            terms = {t.strip() for t in union.expression.split("|")}
            assert terms == {t.strip() for p in defined for t in p.expression.split("|")}, code
            for i, component in enumerate(union.components):  # combo-code-value-quantity: (combo-code, ...)
                assert stored_as(component.code, (resource_type,)) == tuple(p.components[i].code for p in defined)


def test_union_rows_equal_their_parts_rows_for_every_synthea_observation() -> None:
    checked = with_components = 0
    for observation in (x for x in synthea_resources() if x["resourceType"] == "Observation"):
        found = extract_index_values(observation)
        for code, parts in UNIONS["Observation"].items():
            assert _values(found, code) == _values(found, *parts), (observation["id"], code)
        checked += 1
        with_components += "component" in observation
    assert checked > 100 and with_components >= 3


def test_union_rows_equal_their_parts_rows_for_the_programmes_observations() -> None:
    for text in (r.HEMOGLOBIN, r.BLOOD_PRESSURE, r.PREGNANCY_STATUS):
        found = extract_index_values(resource(text), base_url=r.BASE)
        for code, parts in UNIONS["Observation"].items():
            assert _values(found, code) == _values(found, *parts), code


def test_no_row_is_stored_for_a_union_parameter() -> None:
    stored = index_rows(1, "Observation", resource(r.BLOOD_PRESSURE))
    params = {row["param"] for rows in stored.values() for row in rows}
    assert "component-code" in params and "component-code-value-quantity" in params
    assert not params & set(UNIONS["Observation"])
    assert stored_as("combo-code", ("Observation",)) == ("code", "component-code")
    assert stored_as("code", ("Observation",)) == ("code",)
