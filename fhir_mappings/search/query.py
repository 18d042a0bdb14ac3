"""Parse a FHIR search query (name/value pairs, already URL-decoded) into a `SearchQuery`.

Three outcomes per parameter, following the spec's lenient/strict handling:
- understood: a `Clause` (or a result setting such as `_sort`), and listed in `accepted`;
- not known or not supported (unknown code, `:in`, `_filter`...): a `Problem`, so the caller
  can ignore it (Prefer: handling=lenient, the default) or answer 400 (handling=strict);
- known but malformed (bad date, unknown prefix, `_count=abc`): `SearchError`, always a 400.
Empty values are ignored, as the spec says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from decimal import Decimal, InvalidOperation
from typing import cast

from fhir_mappings.outcomes import Issue, LimitExceeded
from fhir_mappings.search.dates import InvalidDate, parse_date_range
from fhir_mappings.search.errors import SearchError
from fhir_mappings.search.query_ast import (
    PREFIXES,
    ChainLink,
    Clause,
    CompositeValue,
    DateValue,
    Include,
    MissingValue,
    Modifier,
    NumberValue,
    OfTypeValue,
    Prefix,
    Problem,
    ProblemKind,
    QuantityValue,
    ReferenceValue,
    ReverseChain,
    SearchQuery,
    SortKey,
    StringValue,
    Summary,
    TextValue,
    TokenValue,
    Total,
    UriValue,
    Value,
)
from fhir_mappings.search.references import ID, parse_reference
from fhir_mappings.search.registry import ParamType, SearchParam, SearchRegistry
from fhir_mappings.search.registry import registry as default_registry
from fhir_mappings.search.text import normalise
from fhir_mappings.search.ucum import UCUM_SYSTEM, UNITS, canonical_unit, canonicalise

# Parameters the spec defines that Puente does not implement: reported, never silently dropped.
UNSUPPORTED = frozenset(
    {
        "_text",
        "_content",
        "_query",
        "_list",
        "_filter",
        "_type",
        "_contained",
        "_containedType",
        "_score",
        "_since",
        "_at",
        "_graph",
        "near",
    }
)
SINGLE_RESULT_PARAMS = ("_count", "_total", "_summary", "_format", "_pretty", "_sort")
# Modifiers the spec defines that Puente does not implement (told apart from typos only in messages).
SPEC_MODIFIERS = frozenset({"in", "not-in", "above", "below", "of-type", "text", "identifier", "iterate"})

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?$")
_ELEMENT = re.compile(r"^(?:[A-Z][A-Za-z]+\.)?[a-z][A-Za-z0-9]*(?:\[x\])?$")
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]+$")
_AP_FRACTION = Decimal("0.1")
# Numbers both index columns hold alike (PostgreSQL numeric, SQLite REAL), as for stored resources.
_NUMBER_DIGITS = 32
_NUMBER_EXPONENT = 100


@dataclass(frozen=True)
class QueryLimits:
    """How much one search may ask for (README "Limits"): a query's cost grows with each of these,
    and 1,500 AND-ed parameters or a 60-link chain ran for minutes before they were bounded."""

    params: int = 100  # PUENTE_MAX_SEARCH_PARAMS: name=value pairs, result parameters included
    values: int = 200  # PUENTE_MAX_SEARCH_VALUES: comma-separated values of one parameter
    chain_depth: int = 3  # PUENTE_MAX_CHAIN_DEPTH: links in subject.organization.partof.name
    has_depth: int = 2  # PUENTE_MAX_HAS_DEPTH: nested _has:...:_has:...


_limits = QueryLimits()


def configure_limits(limits: QueryLimits) -> None:
    """Set the process's search limits (the app does, from its settings); every parse uses them."""
    global _limits
    _limits = limits


def _refuse(env: str, what: str, param: str | None = None) -> LimitExceeded:
    expression = (param,) if param else ()
    return LimitExceeded(
        f"The search exceeds a limit ({env}): {what}",
        issues=[Issue(f"{what} (limit {env})", "too-costly", expression=expression)],
    )


class _Skip(Exception):
    """Control flow inside the parser: the parameter was recorded as a Problem."""

    pass


@dataclass
class _State:
    resource_type: str
    registry: SearchRegistry
    base_url: str | None
    tz: tzinfo
    clauses: list[Clause] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)
    passthrough: list[tuple[str, str]] = field(default_factory=list)
    seen_single: set[str] = field(default_factory=set)
    result: dict[str, object] = field(default_factory=dict)
    sort: list[SortKey] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)

    def problem(self, name: str, value: str, kind: ProblemKind, message: str) -> _Skip:
        self.problems.append(Problem(name, value, kind, message))
        return _Skip()


def parse_query(
    resource_type: str,
    params: Iterable[tuple[str, str]],
    *,
    registry: SearchRegistry | None = None,
    base_url: str | None = None,
    tz: tzinfo = UTC,
    max_count: int | None = None,
    reserved: Collection[str] = (),
) -> SearchQuery:
    """The typed query for a type-level search of `resource_type`.

    `base_url` makes absolute references to our own server local; `tz` reads dates written without a
    zone (as extraction does); `_count` is clamped to `max_count`; parameters named in `reserved`
    (the caller's own, e.g. a paging cursor) are returned untouched in `passthrough`.
    Raises SearchError for malformed values and an unknown resource type.
    """
    reg = registry or default_registry()
    if resource_type not in reg.resource_types:
        raise SearchError(f"unknown resource type {resource_type!r}")
    state = _State(resource_type, reg, base_url, tz)
    limits = _limits
    params = list(params)
    if len(params) > limits.params:
        raise _refuse("PUENTE_MAX_SEARCH_PARAMS", f"{len(params)} search parameters; at most {limits.params}")
    for name, value in params:
        _check_cost(name, value, limits)
        _check_text(name, value)
        if name in reserved:
            state.passthrough.append((name, value))
            continue
        if value == "":
            continue
        try:
            if name.split(":", 1)[0] in _RESULT_PARAMS:
                _RESULT_PARAMS[name.split(":", 1)[0]](state, name, value)
            else:
                state.clauses.append(_clause(state, name, value))
        except _Skip:
            continue
        state.accepted.append((name, value))
    count = cast(int | None, state.result.get("_count"))
    if count is not None and max_count is not None:
        count = min(count, max_count)
    return SearchQuery(
        resource_type=resource_type,
        clauses=tuple(state.clauses),
        sort=tuple(state.sort),
        count=count,
        total=cast(Total | None, state.result.get("_total")),
        summary=cast(Summary | None, state.result.get("_summary")),
        elements=tuple(state.elements),
        includes=tuple(state.includes),
        revincludes=tuple(state.revincludes),
        format=cast(str | None, state.result.get("_format")),
        pretty=cast(bool | None, state.result.get("_pretty")),
        problems=tuple(state.problems),
        passthrough=tuple(state.passthrough),
        accepted=tuple(state.accepted),
    )


def _check_cost(name: str, value: str, limits: QueryLimits) -> None:
    """Refuse, before parsing, what would make one parameter expensive (counted on the raw text)."""
    if value.count(",") >= limits.values:
        raise _refuse("PUENTE_MAX_SEARCH_VALUES", f"more than {limits.values} values in one parameter", name[:100])
    has = name.count("_has:")
    if has > limits.has_depth:
        raise _refuse("PUENTE_MAX_HAS_DEPTH", f"_has nested {has} deep; at most {limits.has_depth}", name[:100])
    links = name.rsplit(":", 1)[-1].count(".") if has else name.count(".")
    if links > limits.chain_depth:
        raise _refuse("PUENTE_MAX_CHAIN_DEPTH", f"a chain {links} links deep; at most {limits.chain_depth}",
                      name[:100])


def _check_text(name: str, value: str) -> None:
    """NUL characters and lone surrogates fit no database column: malformed, not merely unknown."""
    for text in (name, value):
        if "\x00" in text:
            raise SearchError("a NUL character is not allowed in a search", param=name.replace("\x00", ""))
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SearchError("the search is not valid Unicode text") from exc


# --- search parameters ----------------------------------------------------------------------------


def _clause(state: _State, name: str, value: str) -> Clause:
    reg = state.registry
    chain: list[ChainLink | ReverseChain] = []
    current: tuple[str, ...] = (state.resource_type,)
    rest = name
    while rest.startswith("_has:"):
        parts = rest.split(":", 3)
        if len(parts) < 4 or not all(parts[1:]):
            raise SearchError("expected _has:Type:reference:parameter", param=name)
        _, source_type, ref_code, rest = parts
        ref = reg.get(source_type, ref_code)
        if ref is None or ref.type != "reference":
            raise state.problem(
                name, value, "unknown-parameter", f"{source_type!r} has no reference parameter {ref_code!r}"
            )
        if not set(current) & set(ref.targets):
            raise state.problem(
                name, value, "unknown-parameter", f"{source_type}.{ref_code} cannot refer to {'/'.join(current)}"
            )
        chain.append(ReverseChain(source_type, ref_code))
        current = (source_type,)
    segments = rest.split(".")
    if any(s == "" or s.startswith(":") for s in segments):
        raise state.problem(name, value, "unknown-parameter", f"{name!r} is not a parameter name")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        code, _, modifier = segment.partition(":")
        found = {t: p for t in current if (p := reg.get(t, code)) is not None}
        if not found:
            if code in UNSUPPORTED:
                raise state.problem(name, value, "unsupported-parameter", f"{code} is not supported")
            raise state.problem(
                name, value, "unknown-parameter", f"unknown search parameter {code!r} for {'/'.join(current)}"
            )
        types = {p.type for p in found.values()}
        if len(types) > 1:
            raise SearchError(f"{code!r} has different types on {', '.join(found)}: name the type", param=name)
        if chain and isinstance(chain[-1], ChainLink):
            chain[-1] = ChainLink(chain[-1].code, tuple(t for t in chain[-1].target_types if t in found))
        param = next(iter(found.values()))
        if last:
            return _final_clause(state, name, value, tuple(chain), tuple(found), param, modifier)
        if param.type != "reference":
            raise state.problem(name, value, "unknown-parameter", f"{code!r} is not a reference: cannot chain")
        targets = sorted({t for p in found.values() for t in p.targets})
        if modifier:
            if modifier not in targets:
                raise state.problem(name, value, "unsupported-modifier", f"{code!r} cannot refer to {modifier!r}")
            targets = [modifier]
        chain.append(ChainLink(code, tuple(targets)))
        current = tuple(targets)
    raise AssertionError("unreachable")


def _final_clause(
    state: _State,
    name: str,
    value: str,
    chain: tuple[ChainLink | ReverseChain, ...],
    resource_types: tuple[str, ...],
    param: SearchParam,
    modifier_text: str,
) -> Clause:
    type_modifier: str | None = None
    modifier: Modifier | None = None
    if modifier_text:
        if modifier_text == "missing" or modifier_text in param.modifiers:
            modifier = cast(Modifier, modifier_text)
        elif param.type == "reference" and _TYPE_NAME.match(modifier_text):
            if modifier_text not in param.targets:
                raise state.problem(
                    name, value, "unsupported-modifier", f"{param.code!r} cannot refer to {modifier_text!r}"
                )
            type_modifier = modifier_text
        else:
            known = "not supported" if modifier_text in SPEC_MODIFIERS else "unknown"
            raise state.problem(
                name,
                value,
                "unsupported-modifier",
                f"modifier :{modifier_text} is {known} on {param.type} parameter {param.code!r}",
            )
    values = tuple(_values(state, param, modifier, type_modifier, value, name))
    if not values:
        raise _Skip()  # only empty items ("a=,"): ignored like an empty value
    return Clause(name, value, chain, resource_types, param.code, param.type, modifier, values, param)


def _values(
    state: _State, param: SearchParam, modifier: Modifier | None, type_modifier: str | None, value: str, name: str
) -> Iterable[Value]:
    for item in split_escaped(value, ","):
        if item == "":
            continue
        if modifier == "missing":
            if item not in ("true", "false"):
                raise SearchError(f":missing takes true or false, not {item!r}", param=name)
            yield MissingValue(item == "true")
            continue
        yield _value(state, param.type, param, modifier, type_modifier, item, name)


def _value(
    state: _State,
    ptype: ParamType,
    param: SearchParam | None,
    modifier: Modifier | None,
    type_modifier: str | None,
    item: str,
    name: str,
) -> Value:
    if ptype == "string":
        text = unescape(item)
        return StringValue(normalise(text), text)
    if ptype == "token":
        if modifier == "text":
            return TextValue(normalise(unescape(item)))
        if modifier == "of-type":
            parts = [unescape(p) for p in split_escaped(item, "|")]
            if len(parts) != 3 or not all(parts):
                raise SearchError(f":of-type takes type-system|type-code|value, not {item!r}", param=name)
            return OfTypeValue(*parts)
        return parse_token(item, name)
    if ptype == "reference":
        if modifier == "identifier":
            return parse_token(item, name)
        return _reference(state, unescape(item), type_modifier, name)
    if ptype == "date":
        prefix, rest = _prefix(item, name)
        try:
            return DateValue(prefix, parse_date_range(rest.replace(" ", "+"), state.tz))
        except InvalidDate as exc:
            raise SearchError(str(exc), param=name) from exc
    if ptype == "number":
        prefix, rest = _prefix(item, name)
        number = parse_number(rest, name)
        low, high = _range(prefix, number, name)
        return NumberValue(prefix, number, low, high)
    if ptype == "quantity":
        return _quantity(item, name)
    if ptype == "uri":
        return UriValue(unescape(item))
    if ptype == "composite" and param is not None:
        parts = split_escaped(item, "$")
        if len(parts) != len(param.components):
            raise SearchError(f"{param.code!r} takes {len(param.components)} values separated by '$'", param=name)
        return CompositeValue(
            tuple(
                _value(state, comp.type, None, None, None, part, name)
                for comp, part in zip(param.components, parts, strict=True)
            )
        )
    raise SearchError(f"cannot search on a {ptype} parameter", param=name)


def parse_token(item: str, name: str = "") -> TokenValue:
    parts = [unescape(p) for p in split_escaped(item, "|")]
    if len(parts) == 1:
        return TokenValue(None, parts[0])
    if len(parts) == 2:
        system, code = parts
        if not system and not code:
            raise SearchError("'|' alone is not a token", param=name or None)
        return TokenValue(system, code or None)
    raise SearchError(f"a token is code, system|code, |code or system|, not {item!r}", param=name or None)


def _reference(state: _State, text: str, type_modifier: str | None, name: str) -> ReferenceValue:
    types = state.registry.resource_types
    if ID.match(text):
        return ReferenceValue(type_modifier, text)
    parsed = parse_reference(text, types, state.base_url)
    if parsed is None:
        raise SearchError(f"{text!r} is not a reference", param=name)
    if parsed.target_id is not None:
        if type_modifier and parsed.target_type != type_modifier:
            raise SearchError(f"{text!r} is not a {type_modifier}", param=name)
        return ReferenceValue(parsed.target_type, parsed.target_id, parsed.version)
    if parsed.url is None or ":" not in parsed.url:
        raise SearchError(f"{text!r} is not an id, Type/id or absolute URL", param=name)
    return ReferenceValue(parsed.target_type, None, parsed.version, parsed.url)


def _quantity(item: str, name: str) -> QuantityValue:
    prefix, rest = _prefix(item, name)
    parts = split_escaped(rest, "|")
    if len(parts) not in (1, 3):
        raise SearchError(f"a quantity is number or number|system|code, not {item!r}", param=name)
    number = parse_number(unescape(parts[0]), name)
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    low, high = _range(prefix, number, name)
    if code and (system == UCUM_SYSTEM or (system is None and code in UNITS)):
        try:
            return QuantityValue(
                prefix,
                number,
                low,
                high,
                system,
                code,
                canonical_unit(code),
                canonicalise(number, code),
                canonicalise(low, code),
                canonicalise(high, code),
            )
        except ArithmeticError as exc:
            raise SearchError(f"{item!r} is out of range", param=name) from exc
    return QuantityValue(prefix, number, low, high, system, code)


def _prefix(item: str, name: str) -> tuple[Prefix, str]:
    head = item[:2]
    if head in PREFIXES:
        return cast(Prefix, head), item[2:]
    if item[:1].isalpha():
        raise SearchError(f"unknown prefix in {item!r} (use eq, ne, gt, lt, ge, le, sa, eb or ap)", param=name)
    return "eq", item


def parse_number(text: str, name: str = "") -> Decimal:
    if not _NUMBER.match(text):
        raise SearchError(f"{text!r} is not a number", param=name or None)
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise SearchError(f"{text!r} is not a number", param=name or None) from exc
    if len(number.as_tuple().digits) > _NUMBER_DIGITS or (number and abs(number.adjusted()) > _NUMBER_EXPONENT):
        raise SearchError(
            f"{text[:40]!r} is out of range (at most {_NUMBER_DIGITS} digits, magnitude 1e±{_NUMBER_EXPONENT})",
            param=name or None,
        )
    return number


def _range(prefix: Prefix, number: Decimal, name: str) -> tuple[Decimal, Decimal]:
    """The implicit range of a number: half a unit of its last digit either side (100 -> 99.5..100.5);
    for `ap`, at least 10% of the value either side."""
    try:
        exponent = number.as_tuple().exponent
        half = Decimal(5).scaleb(int(exponent) - 1)
        if prefix == "ap":
            half = max(half, abs(number) * _AP_FRACTION)
        return number - half, number + half
    except ArithmeticError as exc:
        raise SearchError(f"{number} is out of range", param=name) from exc


# --- result parameters ----------------------------------------------------------------------------


def _single(state: _State, name: str) -> None:
    base = name.split(":", 1)[0]
    if base in state.seen_single:
        raise SearchError(f"{base} given more than once")
    state.seen_single.add(base)


def _no_modifier(state: _State, name: str, value: str) -> None:
    if ":" in name:
        raise state.problem(name, value, "unsupported-modifier", f"{name.split(':', 1)[0]} takes no modifier")


def _count(state: _State, name: str, value: str) -> None:
    _no_modifier(state, name, value)
    _single(state, name)
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise SearchError(f"_count must be a whole number, not {value!r}")
    state.result["_count"] = int(value)


def _choice(*allowed: str) -> Callable[[_State, str, str], None]:
    def parse(state: _State, name: str, value: str) -> None:
        _no_modifier(state, name, value)
        _single(state, name)
        if value not in allowed:
            raise SearchError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        state.result[name] = value

    return parse


def _format(state: _State, name: str, value: str) -> None:
    _no_modifier(state, name, value)
    _single(state, name)
    state.result["_format"] = value


def _pretty(state: _State, name: str, value: str) -> None:
    _no_modifier(state, name, value)
    _single(state, name)
    if value not in ("true", "false"):
        raise SearchError(f"_pretty must be true or false, not {value!r}")
    state.result["_pretty"] = value == "true"


def _sort(state: _State, name: str, value: str) -> None:
    _no_modifier(state, name, value)
    _single(state, name)
    keys = []
    for item in value.split(","):
        if not item:
            continue
        descending = item.startswith("-")
        code = item[1:] if descending else item
        param = state.registry.get(state.resource_type, code)
        if param is None or param.type == "composite":
            raise state.problem(name, value, "unknown-parameter", f"cannot sort {state.resource_type} by {code!r}")
        keys.append(SortKey(code, descending, param))
    state.sort = keys


def _elements(state: _State, name: str, value: str) -> None:
    _no_modifier(state, name, value)
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if not _ELEMENT.match(item):
            raise SearchError(f"_elements: {item!r} is not an element name")
        if item not in state.elements:
            state.elements.append(item)


def _include(state: _State, name: str, value: str) -> None:
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate", "recurse"):  # recurse: the STU3 spelling of iterate
        raise state.problem(name, value, "unsupported-modifier", f"{base} takes only :iterate")
    iterate = modifier != ""
    if value == "*":
        include = Include(None, None, None, iterate)
    else:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise SearchError(f"{base} takes Type:parameter[:TargetType] or *, not {value!r}")
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if source not in state.registry.resource_types:
            raise state.problem(name, value, "unknown-parameter", f"unknown resource type {source!r}")
        if code == "*":
            include = Include(source, None, target, iterate)
        else:
            param = state.registry.get(source, code)
            if param is None or param.type != "reference":
                raise state.problem(name, value, "unknown-parameter", f"{source} has no reference parameter {code!r}")
            if target is not None and target not in param.targets:
                raise state.problem(name, value, "unknown-parameter", f"{source}.{code} cannot refer to {target!r}")
            include = Include(source, code, target, iterate)
    (state.includes if base == "_include" else state.revincludes).append(include)


_RESULT_PARAMS: dict[str, Callable[[_State, str, str], None]] = {
    "_count": _count,
    "_total": _choice("none", "estimate", "accurate"),
    "_summary": _choice("true", "text", "data", "count", "false"),
    "_format": _format,
    "_pretty": _pretty,
    "_sort": _sort,
    "_elements": _elements,
    "_include": _include,
    "_revinclude": _include,
}


# --- escaping -------------------------------------------------------------------------------------


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on `separator` where it is not escaped with a backslash; escapes are kept for `unescape`."""
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    r"""`\,` `\|` `\$` `\\` -> the character; any other backslash stays as written."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",|$\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
