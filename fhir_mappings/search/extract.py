"""Index rows for one resource, from every search parameter of its type.

Values are found by the registry's fast paths (plain JSON key walks, precomputed from the FHIRPath
expressions) or, for the few expressions that are not plain walks, by the precompiled fhirpathpy
function. `engine="fhirpath"` forces fhirpathpy everywhere; tests use it to prove both give the same
rows. Conversion to rows goes by the shape of each value (Period vs Timing, Identifier vs Coding),
so both engines feed the same converters.

Extraction never raises on odd content: a value that cannot be read (a malformed date, a string
where an object belongs) contributes no row. Validation is the write path's job, not the index's.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple, Protocol

from fhir_mappings.search.dates import DATE_MAX, DATE_MIN, DateRange, InvalidDate, parse_date_range, period_range
from fhir_mappings.search.references import parse_reference
from fhir_mappings.search.registry import (
    FastPath,
    SearchParam,
    SearchRegistry,
    Step,
    compile_fhirpath,
)
from fhir_mappings.search.registry import registry as default_registry
from fhir_mappings.search.rows import (
    CompositeRow,
    DateRow,
    IndexValue,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from fhir_mappings.search.text import normalise
from fhir_mappings.search.ucum import UCUM_SYSTEM, canonical_unit, canonicalise

Engine = Literal["fast", "fhirpath"]

ISO_4217 = "urn:iso:std:iso:4217"

# The string parts of HumanName and Address (and CodeableConcept.text) a string search looks at.
STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


class _Target(Protocol):
    """What a converter needs to know of the parameter it indexes (a SearchParam or a component)."""

    @property
    def code(self) -> str: ...
    @property
    def code_system(self) -> str | None: ...
    @property
    def target_filter(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class _Options:
    base_url: str | None
    tz: tzinfo
    resource_types: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ComponentTarget:
    code: str
    code_system: str | None = None
    target_filter: tuple[str, ...] = ()
    # a composite's token component only matches on codes: a CodeableConcept.text row is noise there
    drop_text_only: bool = False


Converter = Callable[[_Target, Any, _Options, list[IndexValue]], None]


def extract_index_values(
    resource: dict[str, Any],
    *,
    base_url: str | None = None,
    tz: tzinfo = UTC,
    registry: SearchRegistry | None = None,
    engine: Engine = "fast",
    skip: frozenset[str] = frozenset(),
) -> list[IndexValue]:
    """The distinct index rows of `resource` (parsed with fhir_json.loads), for all its type's parameters
    but those in `skip`.

    `base_url` makes absolute references on our own server local; `tz` is the zone for dates and
    times written without one (the FHIR spec says: the server's local zone).
    """
    reg = registry or default_registry()
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in reg.resource_types:
        return []
    options = _Options(base_url, tz, reg.resource_types)
    out: list[IndexValue] = []
    fast = engine == "fast"
    plan = _plan(reg, resource_type, skip)
    for param, convert, _first_keys, composite in _present(plan, resource) if fast else plan.items:
        if composite is not None:
            _composite(param, composite, resource, options, engine, out)
            continue
        if fast and param.paths is not None:
            values = _walk_all(resource, param.paths)
        else:
            values = _fhirpath_values(param.compiled(), resource)
        for value in values:
            convert(param, value, options, out)
    # Equal elements give equal rows (two identical identifiers, FHIRPath `|` already merges them).
    return list(dict.fromkeys(out))


_PlanItem = tuple[SearchParam, Converter, frozenset[str], "_CompositeSpec | None"]


class _Plan(NamedTuple):
    items: tuple[_PlanItem, ...]
    by_key: dict[str, tuple[int, ...]]  # resource key -> the items whose fast paths start there
    anywhere: tuple[int, ...]  # the items whose paths are not known: always run


@functools.cache
def _plan(reg: SearchRegistry, resource_type: str, skip: frozenset[str]) -> _Plan:
    """Per parameter not in `skip`: its converter, the resource keys its fast paths start from (empty:
    unknown), and for composites their prepared components."""
    items = []
    for p in reg.params_for(resource_type).values():
        if p.code in skip:
            continue
        first_keys: frozenset[str] = frozenset()
        if p.paths and all(path.steps and isinstance(path.steps[0], str) for path in p.paths):
            first_keys = frozenset(str(path.steps[0]) for path in p.paths)
        composite = _composite_spec(p) if p.type == "composite" else None
        items.append((p, CONVERTERS[p.type], first_keys, composite))
    by_key: dict[str, list[int]] = {}
    anywhere: list[int] = []
    for i, (_, _, first_keys, _) in enumerate(items):
        if not first_keys:
            anywhere.append(i)
        for key in first_keys:
            by_key.setdefault(key, []).append(i)
    return _Plan(tuple(items), {k: tuple(v) for k, v in by_key.items()}, tuple(anywhere))


def _present(plan: _Plan, resource: dict[str, Any]) -> list[_PlanItem]:
    """The plan's items that can find something in `resource`, in plan order: a type has ~40
    parameters, and a resource holds the elements of a dozen."""
    chosen = set(plan.anywhere)
    for key in resource:
        chosen.update(plan.by_key.get(key, ()))
    return [plan.items[i] for i in sorted(chosen)]


def _walk_all(node: Any, paths: tuple[FastPath, ...]) -> list[Any]:
    if len(paths) == 1:
        return _walk(node, paths[0].steps)
    out: list[Any] = []
    for path in paths:
        out.extend(_walk(node, path.steps))
    return out


def _walk(node: Any, steps: tuple[Step, ...]) -> list[Any]:
    """FHIRPath navigation restricted to member access, `[n]` and `where(key = 'value')`."""
    if len(steps) == 1 and node.__class__ is dict:  # the common case: one member of the resource
        value = node.get(steps[0])
        if value is None:
            return []
        if value.__class__ is list:
            return [v for v in value if v is not None]
        return [value]
    items = [node]
    for step in steps:
        if isinstance(step, str):
            found: list[Any] = []
            for item in items:
                if item.__class__ is dict:
                    value = item.get(step)
                    if value is None:
                        continue
                    if value.__class__ is list:
                        found.extend(v for v in value if v is not None)
                    else:
                        found.append(value)
            items = found
        elif isinstance(step, int):
            items = items[step : step + 1]
        else:
            key, wanted = step
            items = [item for item in items if item.__class__ is dict and item.get(key) == wanted]
        if not items:
            return items
    return items


def _fhirpath_values(fn: Callable[[Any], list[Any]], node: Any) -> list[Any]:
    try:
        values = fn(node)
    except Exception:  # fhirpathpy raises bare Exceptions on content it cannot type; no row then
        return []
    return [v for v in values if v is not None]


@dataclass(frozen=True, slots=True)
class _CompositeSpec:
    """A composite parameter prepared once: its components' targets and converters."""

    targets: tuple[_ComponentTarget, ...]
    converters: tuple[Converter, ...]


def _composite_spec(param: SearchParam) -> _CompositeSpec:
    return _CompositeSpec(
        tuple(_ComponentTarget(c.code, drop_text_only=c.type == "token") for c in param.components),
        tuple(CONVERTERS[c.type] for c in param.components),
    )


def _composite(
    param: SearchParam,
    spec: _CompositeSpec,
    resource: dict[str, Any],
    options: _Options,
    engine: Engine,
    out: list[IndexValue],
) -> None:
    if param.paths is not None and engine == "fast":
        for ctx in param.paths:
            for node in _walk(resource, ctx.steps) if ctx.steps else (resource,):
                rows = _components(node, spec, options, ctx.components, None)
                if rows:
                    out.extend(CompositeRow(param.code, combo) for combo in itertools.product(*rows))
    else:
        for context in param.contexts:
            for node in _fhirpath_values(compile_fhirpath(context.expression), resource):
                rows = _components(node, spec, options, (), (param, context.base))
                if rows:
                    out.extend(CompositeRow(param.code, combo) for combo in itertools.product(*rows))


def _components(
    node: Any,
    spec: _CompositeSpec,
    options: _Options,
    paths: tuple[tuple[FastPath, ...] | None, ...],
    fhirpath: tuple[SearchParam, str] | None,
) -> list[list[IndexValue]]:
    """Rows per component of one context node; [] as soon as one component has none.

    Components are read last first: the value component is the one most often absent (an Observation
    has one kind of value), which spares converting its code for every composite it could be in.
    """
    n = len(spec.targets)
    per_component: list[list[IndexValue]] = [[] for _ in range(n)]
    for i in range(n - 1, -1, -1):
        if fhirpath is None:
            values = _walk_all(node, paths[i] or ())
        else:
            param, base = fhirpath
            values = _fhirpath_values(compile_fhirpath(param.components[i].expression, base), node)
        if not values:
            return []
        rows = per_component[i]
        target, convert = spec.targets[i], spec.converters[i]
        for value in values:
            convert(target, value, options, rows)
        if target.drop_text_only:
            rows[:] = [r for r in rows if not (isinstance(r, TokenRow) and r.code is None)]
        if not rows:
            return []
    return per_component


# --- converters: one FHIR value -> rows -------------------------------------------------------------


def _token(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    code = target.code
    if isinstance(value, bool):
        out.append(TokenRow(code, None, "true" if value else "false"))
    elif isinstance(value, str):
        if value:
            out.append(TokenRow(code, target.code_system, value))
    elif isinstance(value, int | Decimal):
        out.append(TokenRow(code, None, str(value)))
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "value" not in value and "code" not in value):
            _codeable_concept(code, value, out)
        elif "value" in value:
            _identifier(code, value, out)
        else:
            _coding(code, value, out)


def _coding(param: str, coding: Any, out: list[IndexValue]) -> None:
    if not isinstance(coding, dict):
        return
    system, code, display = _str(coding.get("system")), _str(coding.get("code")), _str(coding.get("display"))
    if system or code or display:
        out.append(TokenRow(param, system, code, normalise(display) if display else None))


def _codeable_concept(param: str, concept: dict[str, Any], out: list[IndexValue]) -> None:
    codings = concept.get("coding")
    if isinstance(codings, list):
        for coding in codings:
            _coding(param, coding, out)
    text = _str(concept.get("text"))
    if text:
        out.append(TokenRow(param, None, None, normalise(text)))


def _identifier(param: str, ident: dict[str, Any], out: list[IndexValue]) -> None:
    """An Identifier (system|value, with type codings for :of-type) or a ContactPoint (system|value)."""
    value = _str(ident.get("value"))
    if not value:
        return
    system = _str(ident.get("system"))
    id_type = ident.get("type")
    text = None
    type_codings: list[tuple[str | None, str | None]] = []
    if isinstance(id_type, dict):
        type_text = _str(id_type.get("text"))
        text = normalise(type_text) if type_text else None
        for coding in _list(id_type.get("coding")):
            if isinstance(coding, dict) and (coding.get("system") or coding.get("code")):
                type_codings.append((_str(coding.get("system")), _str(coding.get("code"))))
    if not type_codings:
        out.append(TokenRow(param, system, value, text))
    for type_system, type_code in type_codings:
        out.append(TokenRow(param, system, value, text, type_system, type_code))


def _string(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    if isinstance(value, str):
        if value:
            out.append(StringRow(target.code, normalise(value), value))
    elif isinstance(value, dict):
        for part in STRING_PARTS:
            item = value.get(part)
            if item is None:
                continue
            for text in item if isinstance(item, list) else (item,):
                if isinstance(text, str) and text:
                    out.append(StringRow(target.code, normalise(text), text))


def _date(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    try:
        if isinstance(value, str):
            out.append(DateRow(target.code, parse_date_range(value, options.tz)))
        elif isinstance(value, dict):
            if "start" in value or "end" in value:
                start, end = _str(value.get("start")), _str(value.get("end"))
                if start or end:
                    out.append(DateRow(target.code, period_range(start, end, options.tz)))
            elif "event" in value or "repeat" in value:
                span = _timing_range(value, options.tz)
                if span is not None:
                    out.append(DateRow(target.code, span))
    except InvalidDate:
        return


def _timing_range(timing: dict[str, Any], tz: tzinfo) -> DateRange | None:
    """Only the outer limits of a Timing count: its events and its repeat.boundsPeriod."""
    ranges = [parse_date_range(e, tz) for e in _list(timing.get("event")) if isinstance(e, str)]
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
        bounds = repeat["boundsPeriod"]
        ranges.append(period_range(_str(bounds.get("start")), _str(bounds.get("end")), tz))
    if not ranges:
        return None
    low, high = min(r.low for r in ranges), max(r.high for r in ranges)
    return DateRange(low, high) if (low, high) != (DATE_MIN, DATE_MAX) else None


def _reference(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    row: ReferenceRow | None = None
    if isinstance(value, str):  # a canonical or uri element
        parsed = parse_reference(value, options.resource_types, canonical=True)
        if parsed:
            row = ReferenceRow(target.code, parsed.target_type, parsed.target_id, parsed.version, parsed.url)
    elif isinstance(value, dict):
        if "resourceType" in value:  # Bundle.entry[0].resource: the resource itself
            rid = _str(value.get("id"))
            if rid:
                row = ReferenceRow(target.code, _str(value.get("resourceType")), rid)
        else:
            row = _reference_element(target.code, value, options)
    if row is None:
        return
    if target.target_filter and row.target_type not in target.target_filter:
        return
    out.append(row)


def _reference_element(param: str, ref: dict[str, Any], options: _Options) -> ReferenceRow | None:
    declared_type = _str(ref.get("type"))
    ident = ref.get("identifier")
    id_system = id_value = None
    if isinstance(ident, dict):
        id_system, id_value = _str(ident.get("system")), _str(ident.get("value"))
    text = _str(ref.get("reference"))
    parsed = parse_reference(text, options.resource_types, options.base_url) if text else None
    if parsed is None and id_value is None:
        return None
    if parsed is None:
        return ReferenceRow(param, declared_type, None, None, None, id_system, id_value)
    return ReferenceRow(
        param, parsed.target_type or declared_type, parsed.target_id, parsed.version, parsed.url, id_system, id_value
    )


def _quantity(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    if not isinstance(value, dict):
        return
    if "low" in value or "high" in value:  # Range
        low_q, high_q = value.get("low"), value.get("high")
        low = _number(low_q.get("value")) if isinstance(low_q, dict) else None
        high = _number(high_q.get("value")) if isinstance(high_q, dict) else None
        unit_from = low_q if isinstance(low_q, dict) and low is not None else high_q
        if (low is None and high is None) or not isinstance(unit_from, dict):
            return
        _quantity_row(target.code, low, high, unit_from, out)
        return
    number = _number(value.get("value"))
    if number is None:
        return
    comparator = value.get("comparator")
    low = None if comparator in ("<", "<=") else number
    high = None if comparator in (">", ">=") else number
    _quantity_row(target.code, low, high, value, out)


def _quantity_row(
    param: str, low: Decimal | None, high: Decimal | None, unit_from: dict[str, Any], out: list[IndexValue]
) -> None:
    system, code, unit = _str(unit_from.get("system")), _str(unit_from.get("code")), _str(unit_from.get("unit"))
    currency = _str(unit_from.get("currency"))
    if currency and not code:  # Money
        system, code = ISO_4217, currency
    if system == UCUM_SYSTEM and code:
        out.append(
            QuantityRow(
                param,
                low,
                high,
                system,
                code,
                unit,
                canonical_unit(code),
                None if low is None else canonicalise(low, code),
                None if high is None else canonicalise(high, code),
            )
        )
    else:
        out.append(QuantityRow(param, low, high, system, code, unit))


def _number_row(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    if isinstance(value, dict):
        if "low" in value or "high" in value:
            low_q, high_q = value.get("low"), value.get("high")
            low = _number(low_q.get("value")) if isinstance(low_q, dict) else None
            high = _number(high_q.get("value")) if isinstance(high_q, dict) else None
            if low is not None or high is not None:
                out.append(NumberRow(target.code, low, high))
            return
        value = value.get("value")
    number = _number(value)
    if number is not None:
        out.append(NumberRow(target.code, number, number))


def _uri(target: _Target, value: Any, options: _Options, out: list[IndexValue]) -> None:
    if isinstance(value, str) and value:
        out.append(UriRow(target.code, value))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # not from fhir_json.loads, but tolerate plain json.loads input
        try:
            result = Decimal(repr(value))
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


CONVERTERS: dict[str, Converter] = {
    "token": _token,
    "string": _string,
    "date": _date,
    "reference": _reference,
    "quantity": _quantity,
    "number": _number_row,
    "uri": _uri,
    "composite": lambda *_: None,  # handled by _composite, which needs the whole node
}
