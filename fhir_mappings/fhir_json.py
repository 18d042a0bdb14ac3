"""FHIR JSON in and out without losing what the client wrote.

Decimals are parsed as `decimal.Decimal` (so `72.50` keeps its two places) that also remember the
text they were written as (`1.0e2` would come back as `1.0E+2` from `str`), and are written back
verbatim through orjson fragments; everything else goes through orjson for speed.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

JsonObject = dict[str, Any]


class JsonDecimal(Decimal):
    """A decimal as the client wrote it: equal to the Decimal, serialised as the original text."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonDecimal:
        value = super().__new__(cls, text)
        value.text = text
        return value


class MalformedJson(ValueError):
    """The bytes are not one JSON object."""


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not valid JSON")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> JsonObject:
    obj: JsonObject = {}
    for key, value in pairs:
        if key in obj:
            raise MalformedJson(f"duplicate property {key!r}")
        obj[key] = value
    return obj


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping decimals exact and refusing NaN/Infinity and duplicate keys."""
    try:
        return json.loads(
            data,
            parse_float=JsonDecimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_reject_duplicate_keys,
        )
    except MalformedJson:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJson(str(exc)) from exc


def loads_stored(content: bytes | str) -> Any:
    """Parse JSON this server stored: it came through `loads` and `dumps`, so it has no duplicate
    keys or NaN to refuse, and the per-object check is skipped (it made parsing ~3x slower; the
    rules parse a child's whole record on every measurement). Decimals stay exact."""
    return json.loads(content, parse_float=JsonDecimal)


def _default(value: Any) -> Any:
    if isinstance(value, JsonDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, default=_default, option=option)
