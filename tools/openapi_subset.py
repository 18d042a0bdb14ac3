"""Cut the OpenAPI document down to the resource types an integration uses.

The whole document (147 types) generates a client of tens of megabytes; a clinic that only pulls
referrals wants ServiceRequest, Task and Patient. The subset keeps the operations tagged with those
types (plus any other tags named), and only the components they refer to.

    uv run python tools/openapi_subset.py Patient Observation > puente-chw.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from api.openapi_subset import subset

DOCUMENT = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"

__all__ = ["subset"]

if __name__ == "__main__":
    json.dump(subset(json.loads(DOCUMENT.read_text()), set(sys.argv[1:])), sys.stdout, ensure_ascii=False)
