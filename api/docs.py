"""/openapi.json, /docs (Swagger UI) and /redoc, working with no network: CHW programmes often have none.

FastAPI's pages load Swagger UI and Redoc from a CDN; here their assets come from the `fastapi-offline`
package (pinned in uv.lock) and are served by Puente under /docs/assets. The document is a few
megabytes, so it is serialised once, with an ETag, and gzipped once for clients that take gzip.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from api.openapi_subset import subset
from fhir_mappings.validation import check_resource_type

ASSETS = "/docs/assets"
_ASSET_DIR = Path(str(resources.files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve the document and both UIs (the app is made with FastAPI's own three URLs turned off)."""
    app.mount(ASSETS, StaticFiles(directory=_ASSET_DIR), name="docs-assets")
    cache: dict[str, tuple[bytes, bytes, str]] = {}

    def document() -> tuple[bytes, bytes, str]:
        if "doc" not in cache:
            body = json.dumps(app.openapi(), ensure_ascii=False, separators=(",", ":")).encode()
            etag = f'W/"{hashlib.sha256(body).hexdigest()[:16]}"'
            cache["doc"] = (body, gzip.compress(body, compresslevel=9, mtime=0), etag)
        return cache["doc"]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request) -> Response:
        body, zipped, etag = document()
        headers = {"ETag": etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            return Response(zipped, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Puente FHIR R4 API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            init_oauth={"usePkceWithAuthorizationCodeGrant": True},
            # 147 types: list the tags closed, and let a reader filter them by name.
            swagger_ui_parameters={"docExpansion": "none", "filter": True, "defaultModelsExpandDepth": -1},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(types: str | None = None) -> Response:
        chosen = _types(types)
        return HTMLResponse(_redoc_page(",".join(chosen), chosen == REDOC_TYPES))

    @app.get("/docs/openapi-shallow.json", include_in_schema=False)
    async def shallow_json(request: Request, types: str | None = None) -> Response:
        key = ",".join(_types(types))
        if key not in shallow_cache:
            document = shallow(subset(app.openapi(), set(key.split(",")) | _OTHER_TAGS))
            body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
            if len(shallow_cache) > 32:
                shallow_cache.clear()
            shallow_cache[key] = gzip.compress(body, compresslevel=6, mtime=0)
        if "gzip" not in request.headers.get("accept-encoding", "").lower():
            return Response(gzip.decompress(shallow_cache[key]), media_type="application/json")
        return Response(shallow_cache[key], media_type="application/json", headers={"Content-Encoding": "gzip"})

    shallow_cache: dict[str, bytes] = {}


# Redoc lays out every operation at once: 147 types (some 2,000 operations) hang a browser tab, so it
# shows the CHW programme's core types unless `?types=` names others. Swagger UI (/docs) shows them all.
REDOC_TYPES = ("Immunization", "Observation", "Patient", "RelatedPerson", "ServiceRequest", "Task")
_OTHER_TAGS = {"authorization", "batch/transaction", "capabilities", "clinical operations", "health", "history"}


def _types(types: str | None) -> tuple[str, ...]:
    if not types:
        return REDOC_TYPES
    names = sorted({t.strip() for t in types.split(",") if t.strip()})
    for name in names:
        check_resource_type(name)
    return tuple(names[:20])


def _redoc_page(types: str, default: bool) -> str:
    note = (
        f"Resource types shown: {html.escape(types)}{' (the default)' if default else ''}. "
        "Others: /redoc?types=Encounter,Condition; all of them at once: /docs."
    )
    return REDOC_PAGE.replace("{types}", html.escape(types, quote=True)).replace("{note}", note)


def shallow(document: dict[str, Any]) -> dict[str, Any]:
    """The document for Redoc: the same operations, each resource's elements one level deep.

    Redoc builds the whole schema tree of every body, and the R4 data types nest without end
    (Extension -> value[x] -> Extension ...): on the full document the browser tab hangs. Here an element
    of a complex type is an object named by its type (`Identifier`), primitives and code lists stay.
    """
    out = copy.deepcopy(document)
    schemas: dict[str, Any] = out["components"]["schemas"]
    resources = {name for name, s in schemas.items() if "resourceType" in s.get("properties", {})}

    def flat(spec: dict[str, Any]) -> dict[str, Any]:
        target = spec.get("items", spec)
        ref = target.get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        if not ref or name[:1].islower() or name not in schemas:
            return spec  # a primitive (string, dateTime, code...) or an inline rule
        stub = {"type": "object", "title": name.replace("_", "."), "description": f"FHIR {name.replace('_', '.')}"}
        return {**spec, "items": stub} if "items" in spec else stub

    for name in resources:
        schema = schemas[name]
        schema["properties"] = {k: flat(v) for k, v in schema.get("properties", {}).items()}
    kept = {n for n in schemas if n in resources or n[:1].islower() or n in ("JsonPatch", "ResourceList")}
    out["components"]["schemas"] = {n: s for n, s in schemas.items() if n in kept}
    return out


# FastAPI's Redoc page takes no options; here Redoc reads the shallow document (see `shallow`) and makes
# payload samples at most 2 levels deep.
REDOC_PAGE = (
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    f"<title>Puente FHIR R4 API</title>\n<link rel=\"icon\" href=\"{ASSETS}/favicon.png\">\n"
    "<style>body { margin: 0; padding: 0; }</style>\n</head>\n<body>\n"
    "<p style=\"font-family: sans-serif; margin: 8px 16px\">{note}</p>\n"
    "<redoc spec-url=\"/docs/openapi-shallow.json?types={types}\" generated-payload-samples-max-depth=\"2\"></redoc>\n"
    f"<script src=\"{ASSETS}/redoc.standalone.js\"></script>\n</body>\n</html>\n"
)
