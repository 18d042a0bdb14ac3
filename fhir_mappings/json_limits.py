"""Limits on the shape of parsed JSON, checked before anything else looks at it.

Every later step (the schema validator, index extraction, the clinical rules, the database drivers)
walks resources recursively or copies their values into columns; a body within the size limit can
still be 5 million levels deep, hold a million-item array, a lone surrogate no driver can encode, or a
number no index column can hold. Those are refused here, with the limit named, in one iterative pass
(no recursion, so no depth can exhaust the stack).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_mappings.outcomes import Issue, LimitExceeded

# Lone surrogates cannot be encoded as UTF-8 (asyncpg, orjson and SQLite all fail on them), and a NUL
# fits no PostgreSQL text column; FHIR strings allow neither.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class JsonLimits:
    """Each field is a setting (`PUENTE_MAX_...`); `env` names it in the answer."""

    depth: int = 64
    array_items: int = 10_000
    string_chars: int = 4 * 1024 * 1024
    number_digits: int = 32
    number_exponent: int = 100


DEFAULT_LIMITS = JsonLimits()


class _Path:
    """The path to a node, built only when something is refused (a linked list of keys)."""

    __slots__ = ("key", "parent")

    def __init__(self, parent: _Path | None, key: str | int) -> None:
        self.parent = parent
        self.key = key

    def render(self, root: str) -> str:
        keys: list[str | int] = []
        node: _Path | None = self
        while node is not None:
            keys.append(node.key)
            node = node.parent
        text = root
        for key in reversed(keys):
            text += f"[{key}]" if isinstance(key, int) else f".{key}"
        return text


def check_json(value: Any, limits: JsonLimits = DEFAULT_LIMITS) -> None:
    """Raise LimitExceeded (400, too-costly) naming the limit and the element that exceeds it."""
    root = value.get("resourceType") if isinstance(value, dict) else None
    root = root if isinstance(root, str) and root.isalnum() and len(root) < 64 else "$"
    stack: list[tuple[Any, int, _Path | None]] = [(value, 1, None)]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            if depth > limits.depth:
                _refuse("PUENTE_MAX_JSON_DEPTH", f"JSON nested deeper than {limits.depth} levels", path, root)
            for key, item in node.items():
                _check_string(key, limits, path, root)
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, _Path(path, key)))
                elif isinstance(item, str):
                    _check_string(item, limits, _Path(path, key), root)
                elif isinstance(item, Decimal | int) and not isinstance(item, bool):
                    _check_number(item, limits, _Path(path, key), root)
        elif isinstance(node, list):
            if depth > limits.depth:
                _refuse("PUENTE_MAX_JSON_DEPTH", f"JSON nested deeper than {limits.depth} levels", path, root)
            if len(node) > limits.array_items:
                _refuse(
                    "PUENTE_MAX_ARRAY_ITEMS", f"an array of {len(node)} items; at most {limits.array_items}", path, root
                )
            for index, item in enumerate(node):
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, _Path(path, index)))
                elif isinstance(item, str):
                    _check_string(item, limits, _Path(path, index), root)
                elif isinstance(item, Decimal | int) and not isinstance(item, bool):
                    _check_number(item, limits, _Path(path, index), root)
        elif isinstance(node, str):
            _check_string(node, limits, path, root)
        elif isinstance(node, Decimal | int) and not isinstance(node, bool):
            _check_number(node, limits, path, root)


def _check_string(text: str, limits: JsonLimits, path: _Path | None, root: str) -> None:
    if len(text) > limits.string_chars:
        _refuse("PUENTE_MAX_STRING_CHARS", f"a string of {len(text)} characters; at most {limits.string_chars}",
                path, root)
    # isascii() is a C-speed early exit for almost every string a CHW app sends.
    if "\x00" in text or (not text.isascii() and _UNSTORABLE.search(text)):
        raise LimitExceeded(
            "A string holds a NUL character or a lone surrogate (e.g. \\ud800), which is not valid FHIR text",
            issues=[Issue("NUL characters and unpaired surrogates are not allowed in FHIR strings", "invalid",
                          expression=(path.render(root) if path else root,))],
        )


def _check_number(number: Decimal | int, limits: JsonLimits, path: _Path | None, root: str) -> None:
    if isinstance(number, int):
        if -(10**limits.number_digits) < number < 10**limits.number_digits:
            return
        _refuse("PUENTE_MAX_NUMBER_DIGITS", f"an integer of more than {limits.number_digits} digits", path, root)
        return
    if not number.is_finite():
        _refuse("PUENTE_MAX_NUMBER_EXPONENT", "a number that is not finite", path, root)
    digits = number.as_tuple().digits
    if len(digits) > limits.number_digits:
        _refuse("PUENTE_MAX_NUMBER_DIGITS",
                f"a number of {len(digits)} significant digits; at most {limits.number_digits}", path, root)
    # The search indexes hold numbers as PostgreSQL numeric and SQLite REAL: a magnitude both hold
    # alike, so a value is never stored on one database and refused (or made infinite) on the other.
    if number and abs(number.adjusted()) > limits.number_exponent:
        _refuse("PUENTE_MAX_NUMBER_EXPONENT",
                f"a number of magnitude 1e{number.adjusted()}; at most 1e±{limits.number_exponent}", path, root)


def _refuse(env: str, what: str, path: _Path | None, root: str) -> None:
    where = path.render(root) if path else root
    raise LimitExceeded(
        f"The body exceeds a limit ({env}): {what}",
        issues=[Issue(f"{where}: {what} (limit {env})", "too-costly", expression=(where,))],
    )
