"""Write openapi/openapi.json from the app (a test fails when the committed copy drifts).

Run: `uv run python tools/generate_openapi.py`.

The document is a few megabytes (147 resource types), so it is written compactly, yet reviewable as a
diff: one line per path item, per component and per top-level entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.app import create_app
from settings import Settings

TARGET = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def _one(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _block(mapping: dict[str, Any], indent: str) -> str:
    lines = [f"{indent}{_one(key)}:{_one(value)}" for key, value in sorted(mapping.items())]
    return "{\n" + ",\n".join(lines) + "\n" + indent[:-1] + "}"


def dump(document: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(document.items()):
        if key == "paths":
            parts.append(f' "paths":{_block(value, "  ")}')
        elif key == "components":
            kinds = [f'  {_one(kind)}:{_block(entries, "   ")}' for kind, entries in sorted(value.items())]
            parts.append(' "components":{\n' + ",\n".join(kinds) + "\n }")
        else:
            parts.append(f" {_one(key)}:{_one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def render() -> str:
    app = create_app(Settings(auth="on", base_url="http://127.0.0.1:8000"))
    return dump(app.openapi())


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
