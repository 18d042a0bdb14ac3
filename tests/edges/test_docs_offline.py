"""/docs and /redoc work with no network: a real browser loads them from a running `puente serve`
while every request to any other host is refused, and the API's operations appear."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, async_playwright

from tests.edges.test_browser_cors import CHROMIUM_FLAGS
from tests.fixtures.live_server import running_server

CHROMIUM = shutil.which("chromium")


async def test_the_document_is_cached_with_an_etag_and_gzipped(http):
    first = await http.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["content-encoding"] == "gzip"
    assert first.json()["info"]["title"] == "Puente FHIR R4 API"
    assert first.num_bytes_downloaded < 400_000
    again = await http.get("/openapi.json", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def test_redoc_reads_a_shallow_document_of_the_types_asked_for(http):
    default = (await http.get("/docs/openapi-shallow.json")).json()
    assert "/fhir/Patient" in default["paths"] and "/fhir/Encounter" not in default["paths"]
    assert "/fhir" in default["paths"]  # batch/transaction and the other non-type tags stay
    assert default["components"]["schemas"]["Patient"]["properties"]["identifier"]["items"]["title"] == "Identifier"
    asked = (await http.get("/docs/openapi-shallow.json?types=Encounter")).json()
    assert "/fhir/Encounter" in asked["paths"] and "/fhir/Patient" not in asked["paths"]
    bad = await http.get("/redoc?types=Nonsense")
    assert bad.status_code == 404 and bad.json()["resourceType"] == "OperationOutcome"


async def test_the_pages_name_only_local_assets(http):
    for page in ("/docs", "/redoc"):
        html = (await http.get(page)).text
        assert "/docs/assets/" in html
        assert "cdn." not in html and "fonts.googleapis" not in html and "https://" not in html, page
    asset = await http.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")


async def _render(page: Page, url: str, text: str) -> None:
    """Open `url` and wait until `text` is in the page (Redoc keeps its menu entries collapsed)."""
    await page.goto(url, timeout=90_000)
    await page.get_by_text(text).first.wait_for(state="attached", timeout=150_000)


async def test_swagger_ui_and_redoc_render_offline(browser_database: str, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does)")
    elsewhere: list[str] = []
    errors: list[str] = []
    with running_server(browser_database, workers=1) as base:
        async def offline(route: Route) -> None:
            if route.request.url.startswith(base):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort("internetdisconnected")

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
            )
            try:
                page = await browser.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.route("**/*", offline)
                await _render(page, f"{base}/docs", "Puente FHIR R4 API")
                await page.get_by_text("Patient", exact=True).first.wait_for(timeout=90_000)  # a tag of operations
                await _render(page, f"{base}/redoc", "Search Patient resources")  # the default core types
                await _render(page, f"{base}/redoc?types=Encounter", "Search Encounter resources")
            finally:
                await browser.close()
    assert elsewhere == []
    assert errors == []
