"""Cut the OpenAPI document down to some of its tags (resource types): for a client generator that
needs only what an integration uses, and for Redoc, which cannot lay out all 147 types at once."""

from __future__ import annotations

from typing import Any


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def subset(document: dict[str, Any], tags: set[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        kept = {k: v for k, v in item.items() if k == "parameters" or set(v.get("tags", ())) & tags}
        if set(kept) - {"parameters"}:
            paths[path] = kept
    components = document.get("components", {})
    wanted: set[str] = set()
    pending = _refs(paths)
    while pending:
        ref = pending.pop()
        if ref in wanted:
            continue
        wanted.add(ref)
        _, _, kind, name = ref.split("/", 3)
        pending |= _refs(components[kind][name]) - wanted
    out = {k: v for k, v in document.items() if k not in ("paths", "components", "tags")}
    out["paths"] = paths
    out["tags"] = [t for t in document.get("tags", []) if t["name"] in tags]
    out["components"] = {"securitySchemes": components.get("securitySchemes", {})}
    for ref in sorted(wanted):
        _, _, kind, name = ref.split("/", 3)
        out["components"].setdefault(kind, {})[name] = components[kind][name]
    return out
