"""Search parameters whose index rows are exactly the union of two others' rows: R4 Observation's combo-*.

`combo-code` is `Observation.code | Observation.component.code`, so each row it would get is a row of
`code` or of `component-code`; likewise for its value, data-absent-reason and composite siblings (a
composite over `Observation | Observation.component` is the union of the one over `Observation` and
the one over `Observation.component`). These rows are not stored: a search on a union parameter
reads the rows of its two parts. An Observation has ~4 fewer of its ~14 index rows, and a household
visit (3 measurements, 4 z-scores) 116 instead of 141.
"""

from __future__ import annotations

from collections.abc import Iterable

UNIONS: dict[str, dict[str, tuple[str, str]]] = {
    "Observation": {
        "combo-code": ("code", "component-code"),
        "combo-value-quantity": ("value-quantity", "component-value-quantity"),
        "combo-value-concept": ("value-concept", "component-value-concept"),
        "combo-data-absent-reason": ("data-absent-reason", "component-data-absent-reason"),
        "combo-code-value-quantity": ("code-value-quantity", "component-code-value-quantity"),
        "combo-code-value-concept": ("code-value-concept", "component-code-value-concept"),
    },
}


def unions_of(resource_type: str) -> frozenset[str]:
    """The union parameters of `resource_type`: extracted for no index row."""
    return frozenset(UNIONS.get(resource_type, ()))


def stored_as(code: str, resource_types: Iterable[str]) -> tuple[str, ...]:
    """The parameter codes whose index rows answer a search on `code` over `resource_types`."""
    for resource_type in resource_types:
        parts = UNIONS.get(resource_type, {}).get(code)
        if parts is not None:
            return parts
    return (code,)
