"""Versioned clinical rule sets, stored as JSON data beside this module.

A rule set is named (e.g. "WHO-2024") and loaded by kind and name; new versions are new files,
never edits of a published one.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def available(kind: str) -> list[str]:
    """Names of the rule sets of one kind ("anaemia", "growth")."""
    prefix = f"{kind}-"
    return sorted(
        entry.name[len(prefix):-len(".json")]
        for entry in resources.files(__name__).iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".json")
    )


def load_json(kind: str, name: str) -> dict[str, Any]:
    """The raw JSON of rule set `name` of `kind`; KeyError names the ones that exist."""
    entry = resources.files(__name__) / f"{kind}-{name}.json"
    if not entry.is_file():
        raise KeyError(f"no {kind} rule set named {name!r}; available: {available(kind)}")
    data: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    if data.get("name") != name or data.get("kind") != kind:
        raise ValueError(
            f"rule set file {entry.name} declares name={data.get('name')!r} kind={data.get('kind')!r}")
    return data
