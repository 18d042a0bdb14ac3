"""A real browser (Chromium) on a web app's origin calls a running `puente serve` across origins.

The page is served from http://localhost:<port>, Puente from http://127.0.0.1:<port>: two origins,
so the browser enforces CORS exactly as it would for a SMART app, preflights included. A second
page on an origin that is not configured must be refused by the browser.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.fixtures.live_server import free_port, running_server

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE = b"<!doctype html><title>CHW app</title><p>CHW app</p>"

# What a SMART app does after login: create a Patient (a non-simple request: preflighted), read the
# headers it needs (Location, ETag), read the resource back, and search.
SCRIPT = """async (base) => {
  const created = await fetch(base + "/fhir/Patient", {
    method: "POST",
    headers: {"Content-Type": "application/fhir+json", "Prefer": "return=representation"},
    body: JSON.stringify({resourceType: "Patient", gender: "female", birthDate: "2023-04-12"}),
  });
  const location = created.headers.get("Location");
  const read = await fetch(location, {headers: {"Accept": "application/fhir+json"}});
  const search = await fetch(base + "/fhir/Patient?gender=female");
  return {
    status: created.status, location, etag: created.headers.get("ETag"),
    readStatus: read.status, readType: (await read.json()).resourceType,
    total: (await search.json()).entry.length,
  };
}"""
REFUSED = """async (base) => {
  try { await fetch(base + "/fhir/metadata"); return "read"; } catch (e) { return e.name; }
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_args: object) -> None:
        pass


@contextmanager
def web_app_origin() -> Iterator[str]:
    """A static page on its own port: the web app's origin."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_browser_app_on_a_configured_origin_uses_puente(browser_database: str, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does)")
    with web_app_origin() as allowed, web_app_origin() as other:
        env = {"PUENTE_CORS_ORIGINS": allowed}
        with running_server(browser_database, workers=1, extra_env=env) as puente:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch_persistent_context(
                    str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
                )
                try:
                    page = await browser.new_page()
                    await page.goto(allowed + "/", timeout=60_000)
                    result = await page.evaluate(SCRIPT, puente)
                    await page.goto(other + "/", timeout=60_000)
                    refused = await page.evaluate(REFUSED, puente)
                finally:
                    await browser.close()
    assert result["status"] == 201
    assert result["location"].startswith(f"{puente}/fhir/Patient/")
    assert result["etag"] == 'W/"1"'
    assert (result["readStatus"], result["readType"]) == (200, "Patient")
    assert result["total"] == 1
    assert refused == "TypeError"  # the browser blocked the answer: that origin is not configured
