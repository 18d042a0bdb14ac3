"""Write openapi/openapi.json from the app (a test fails when the committed copy drifts).

Run: `uv run python tools/generate_openapi.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from api.app import create_app
from settings import Settings

TARGET = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def render() -> str:
    app = create_app(Settings(auth="on", base_url="http://127.0.0.1:8000"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
