"""/panel/ in a real headless Chromium against `puente serve` with OAuth on, on both databases.

A supervisor signs in through the Spanish login page (authorization code + PKCE, driven by the
panel itself), opens the month's worklist of her sector, a child's growth chart and the indicator
tables. Screenshots of every page are kept in test-artifacts/panel/<database>/ (not committed).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright

from fhir_mappings import fhir_json
from tests.edges.test_browser_cors import CHROMIUM_FLAGS
from tests.fixtures.live_server import running_server
from tests.programme import cohort

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"
PASSWORD = "contraseña-de-prueba"
PAGE_LIMIT = 200_000  # bytes: a low-end phone on a prepaid plan


async def test_a_supervisor_signs_in_and_reads_the_panel(
    client: httpx.AsyncClient, database_url: str, backend: str, tmp_path: Path
) -> None:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does)")
    r = await client.post(
        "/fhir", content=fhir_json.dumps(cohort.transaction()), headers={"Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 200, r.text
    username = f"sup-{uuid.uuid4().hex[:8]}"
    puente = Path(sys.executable).parent / "puente"  # the CLI as an operator runs it
    args = ["users", "add", "--username", username, "--practitioner", "Practitioner/sup-a", "--role", "supervisor"]
    added = await asyncio.create_subprocess_exec(
        str(puente),
        *args,
        "--password",
        PASSWORD,
        "--database-url",
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(added.communicate(), timeout=120)
    assert added.returncode == 0, output.decode()
    shots = ARTIFACTS / backend
    shots.mkdir(parents=True, exist_ok=True)
    env = {"PUENTE_AUTH": "on", "PUENTE_DATA_DIR": str(tmp_path / "data")}
    with running_server(database_url, workers=1, extra_env=env) as base:
        elsewhere: list[str] = []
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 360, "height": 740})  # a small phone
                sizes: dict[str, int] = {}

                async def record(response: object) -> None:
                    url = getattr(response, "url", "")
                    if "/panel" in url and getattr(response, "status", 0) == 200:
                        sizes[url] = len(await response.body())  # type: ignore[attr-defined]

                page.on("response", record)
                page.on("request", lambda req: elsewhere.append(req.url) if not req.url.startswith(base) else None)
                await page.goto(f"{base}/panel/?mes={cohort.MONTH}")
                # the panel sent us to Puente's own login page, in Spanish
                assert "/auth/authorize" in page.url and "code_challenge=" in page.url
                await page.get_by_text("Ingresar a Puente").first.wait_for()
                await page.screenshot(path=str(shots / "1-login.png"), full_page=True)
                await page.fill('input[name="username"]', username)
                await page.fill('input[name="password"]', PASSWORD)
                await page.click('button[name="login"]')
                await page.get_by_text("Panel de supervisión").first.wait_for()
                assert page.url.startswith(f"{base}/panel/")
                await page.screenshot(path=str(shots / "2-inicio.png"), full_page=True)
                # the month's worklist of the sector
                await page.goto(f"{base}/panel/lista?location=Location/s1&mes={cohort.MONTH}")
                await page.get_by_text("Lista de trabajo").first.wait_for()
                text = await page.inner_text("main")
                assert "4 personas" in text
                for expected in (
                    "Anemia sin control de hemoglobina",
                    "Gestante sin visita este mes",
                    "Visitas al recién nacido pendientes",
                    "Vacunas vencidas",
                ):
                    assert expected in text
                await page.screenshot(path=str(shots / "3-lista.png"), full_page=True)
                # a child's growth chart (WHO curves and her points) and hemoglobin history
                await page.click("text=nino-anemia")
                await page.get_by_text("Talla para la edad (OMS)").wait_for()
                assert await page.locator("svg polyline").count() >= 10  # 5 WHO curves per chart
                assert await page.locator("svg circle").count() >= 3  # length, weight, hemoglobin
                assert "moderada" in await page.inner_text("main")
                await page.screenshot(path=str(shots / "4-crecimiento.png"), full_page=True)
                # the indicators of the sector
                await page.goto(f"{base}/panel/indicadores?location=Location/dist&mes={cohort.MONTH}")
                await page.get_by_text("Cobertura del tamizaje").first.wait_for()
                # her team's under-fives (sector 1): 3, of whom the newborn was weighed in November
                assert "33.3 %" in await page.inner_text("main")
                await page.screenshot(path=str(shots / "5-indicadores.png"), full_page=True)
                # a referral's progress
                await page.goto(f"{base}/panel/referencia/sr-anemia")
                await page.get_by_text("completada").first.wait_for()
                # a referral of another sector's patient does not exist for her
                other = await page.goto(f"{base}/panel/referencia/sr-done")
                assert other is not None and other.status == 404
                await page.screenshot(path=str(shots / "6-referencia.png"), full_page=True)
            finally:
                await browser.close()
    assert elsewhere == []  # no CDN, nothing from anywhere else
    assert sizes and max(sizes.values()) < PAGE_LIMIT, sizes
