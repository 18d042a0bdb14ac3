"""The typed form of a FHIR search query, as produced by `query.parse_query`.

A `SearchQuery` is an AND of `Clause`s; each clause is an OR of values of one parameter type.
Values reuse the index-side representations (`DateRange`, normalised strings, canonical units),
so matching a value against a row is a comparison of like with like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from fhir_mappings.search.dates import DateRange
from fhir_mappings.search.registry import ParamType, SearchParam

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

# After parsing, a reference `:[type]` modifier is folded into each ReferenceValue's `target_type`.
Modifier = Literal["missing", "exact", "contains", "not", "text", "of-type", "identifier", "above", "below"]

Total = Literal["none", "estimate", "accurate"]
Summary = Literal["true", "text", "data", "count", "false"]
ProblemKind = Literal["unknown-parameter", "unsupported-parameter", "unsupported-modifier"]


@dataclass(frozen=True, slots=True)
class TokenValue:
    """`code`, `system|code`, `|code` (system "" = no system) or `system|` (code None = any code).

    `system` None means any system. Also the value of `:identifier` on references, and of :not.
    """

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class OfTypeValue:
    """`:of-type` on identifiers: `type_system|type_code|value`."""

    type_system: str
    type_code: str
    value: str


@dataclass(frozen=True, slots=True)
class TextValue:
    """`:text` on tokens: matched (starts-with) against TokenRow.text; `text` is normalised."""

    text: str


@dataclass(frozen=True, slots=True)
class StringValue:
    """`value` is normalised (default starts-with, :contains); `exact` as sent (:exact)."""

    value: str
    exact: str


@dataclass(frozen=True, slots=True)
class DateValue:
    """The range the value's precision covers (as DateRow). `ap` is left to the matcher: the spec
    suggests widening by 10% of the distance from now, which a pure parser cannot know."""

    prefix: Prefix
    range: DateRange


@dataclass(frozen=True, slots=True)
class NumberValue:
    """`value` as sent; `low`/`high` the range it stands for: its precision (100 -> [99.5, 100.5]),
    or +/-10% of the value for `ap`. gt/lt/ge/le compare against `value` exactly (per the spec)."""

    prefix: Prefix
    value: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True, slots=True)
class QuantityValue:
    """A number with an optional unit: `5.4`, `5.4||mg` (code or unit, any system), `5.4|system|code`.

    `canonical_*` are set when the unit is UCUM (system UCUM, or no system and a UCUM code
    from ucum.UNITS): compare them with QuantityRow.canonical_* so g/dL matches g/L.
    """

    prefix: Prefix
    value: Decimal
    low: Decimal
    high: Decimal
    system: str | None
    code: str | None
    canonical_code: str | None = None
    canonical_value: Decimal | None = None
    canonical_low: Decimal | None = None
    canonical_high: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """`Type/id[/_history/v]` or a bare `id` (target_type None = any, or from `:Type`), or a `url`."""

    target_type: str | None
    target_id: str | None
    version: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UriValue:
    value: str


@dataclass(frozen=True, slots=True)
class MissingValue:
    """`:missing=true` (no row for the parameter) or `:missing=false` (at least one row)."""

    missing: bool


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """`a$b`: one value per component, in the parameter's component order."""

    components: tuple[Value, ...]


Value = (
    TokenValue
    | OfTypeValue
    | TextValue
    | StringValue
    | DateValue
    | NumberValue
    | QuantityValue
    | ReferenceValue
    | UriValue
    | MissingValue
    | CompositeValue
)


@dataclass(frozen=True, slots=True)
class ChainLink:
    """Forward chain hop `code[:Type].`: follow reference parameter `code` into `target_types`."""

    code: str
    target_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReverseChain:
    """`_has:source_type:reference_code:`: some `source_type` resource's `reference_code` points here."""

    source_type: str
    reference_code: str


@dataclass(frozen=True, slots=True)
class Clause:
    """One query parameter occurrence: matches if any of `values` matches (OR).

    `chain` goes outward from the searched type; `code` is evaluated on `resource_types`
    (the searched type when there is no chain). `param` is the definition on the first of them.
    """

    name: str  # as sent, e.g. "subject:Patient.name:exact"
    raw: str  # the value as sent
    chain: tuple[ChainLink | ReverseChain, ...]
    resource_types: tuple[str, ...]
    code: str
    type: ParamType
    modifier: Modifier | None
    values: tuple[Value, ...]
    param: SearchParam = field(repr=False)


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    descending: bool
    param: SearchParam = field(repr=False)


@dataclass(frozen=True, slots=True)
class Include:
    """`_include`/`_revinclude`: `Source:code[:Target]`; `source_type` None for `*`, `code` None for `Source:*`."""

    source_type: str | None
    code: str | None
    target_type: str | None
    iterate: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """A parameter left out: ignore it under lenient handling, answer 400 under strict."""

    name: str
    value: str
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class SearchQuery:
    resource_type: str
    clauses: tuple[Clause, ...] = ()  # AND
    sort: tuple[SortKey, ...] = ()
    count: int | None = None
    total: Total | None = None
    summary: Summary | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    format: str | None = None
    pretty: bool | None = None
    problems: tuple[Problem, ...] = ()
    # the caller's own parameters (e.g. a paging cursor), untouched, in order
    passthrough: tuple[tuple[str, str], ...] = ()
    # every parameter that was understood, as sent and in order: the `self` link's query
    accepted: tuple[tuple[str, str], ...] = field(default=())
