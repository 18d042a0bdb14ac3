"""Logs as an operator reads them: one JSON object a line (opt-in), each with the request id the
client saw in X-Request-Id, and never a token, a secret or a patient's name."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from api.logs import redact
from api.request_id import from_header
from tests.fixtures.builders import patient
from tests.fixtures.live_server import running_server


async def test_every_answer_has_a_request_id_and_a_sane_one_is_kept(http):
    made = await http.get("/fhir/metadata")
    assert len(made.headers["x-request-id"]) == 32
    other = await http.get("/fhir/metadata")
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    kept = await http.get("/fhir/Patient/nobody", headers={"X-Request-Id": "app-7f3a-0001"})
    assert kept.status_code == 404 and kept.headers["x-request-id"] == "app-7f3a-0001"


def test_a_request_id_that_could_smuggle_text_into_logs_is_replaced():
    for given in ("x", "rosa quispe\nlevel=ERROR", "Bearer eyJ...", "a" * 65, None):
        assert from_header(given) != given


def test_redaction_removes_tokens_and_form_secrets():
    line = (
        "grant failed: Authorization: Bearer abc.def-ghi client_assertion=eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln"
        " password=hunter2&code_verifier=verifier123 {\"refresh_token\": \"r-123\"}"
    )
    cleaned = redact(line)
    for secret in ("abc.def-ghi", "eyJhbGciOiJSUzM4NCJ9", "hunter2", "verifier123", "r-123"):
        assert secret not in cleaned
    assert "grant failed" in cleaned


def test_json_logs_of_a_running_server(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "puente.log"
    env = {"PUENTE_LOG_FORMAT": "json"}
    with running_server(database_url, workers=1, extra_env=env, log=log) as base, httpx.Client(base_url=base) as http:
        created = http.post("/fhir/Patient", json=patient(), headers={"X-Request-Id": "chw-upload-000042"})
        search = http.get("/fhir/Patient", params={"name": "Quispe Nuñez", "given": "Rosa"})
        bad = http.post("/fhir/Patient", json={**patient(), "gender": "banana"})
    assert created.status_code == 201 and search.status_code == 200 and bad.status_code == 400
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # The worker names the loop it runs on (cli.event_loop): asyncio's own on SQLite, uvloop on PostgreSQL.
    loop = "asyncio" if database_url.startswith("sqlite") else "uvloop"
    assert [r["message"] for r in records if r["message"].startswith("event loop:")] == [f"event loop: {loop}"]
    access = [r for r in records if r["logger"] == "puente.access"]
    ids = {r["request_id"]: r for r in access}
    assert ids["chw-upload-000042"]["status"] == 201
    assert ids["chw-upload-000042"]["route"] == "/fhir/{resource_type}"
    assert ids[search.headers["x-request-id"]]["resource_type"] == "Patient"
    assert ids[bad.headers["x-request-id"]]["status"] == 400
    text = log.read_text()
    assert "Quispe" not in text and "Rosa" not in text and "banana" not in text
