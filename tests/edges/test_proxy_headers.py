"""Behind a proxy: PUENTE_BASE_URL is what clients are told, and X-Forwarded-For is believed only from
the proxies in PUENTE_FORWARDED_ALLOW_IPS (a running `puente serve`, as the container runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.fixtures.builders import patient
from tests.fixtures.live_server import running_server

PUBLIC = "https://puente.example.org"
FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(("trusted", "seen"), [("127.0.0.1", "203.0.113.7"), ("10.9.9.9", "127.0.0.1")])
def test_the_base_url_and_forwarded_headers_from_a_trusted_proxy(browser_database, tmp_path: Path, trusted, seen):
    log = tmp_path / "puente.log"
    env = {"PUENTE_BASE_URL": PUBLIC, "PUENTE_FORWARDED_ALLOW_IPS": trusted, "PUENTE_LOG_FORMAT": "json"}
    server = running_server(browser_database, workers=1, extra_env=env, log=log)
    with server as base, httpx.Client(base_url=base) as http:
        created = http.post("/fhir/Patient", json=patient(), headers={**FORWARDED, "X-Request-Id": "via-proxy-0001"})
        bundle = http.get("/fhir/Patient", headers=FORWARDED).json()
    assert created.status_code == 201
    assert created.headers["location"].startswith(f"{PUBLIC}/fhir/Patient/")
    assert bundle["link"][0]["url"].startswith(f"{PUBLIC}/fhir/Patient")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = next(r for r in lines if r.get("request_id") == "via-proxy-0001")
    assert access["client"] == seen
