"""kill -9 in the middle of an export and of an import: the export job is resumed by the next
process (from its checkpoint, no line lost or doubled), the import goes on after its last committed
batch when run again (nothing half-imported, nothing stored twice)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import httpx

from fhir_mappings import fhir_json
from tests.bulk.cli_support import empty, patients_ndjson, puente, query, start, stored
from tests.fixtures.databases import fresh_database
from tests.fixtures.live_server import serve

COUNT = 3000


async def _seed(database_url, tmp_path) -> set[str]:
    ids = patients_ndjson(tmp_path / "patients.ndjson", COUNT)
    loaded = puente(
        database_url, tmp_path, "import", str(tmp_path / "patients.ndjson"), "--no-derived", "--batch-size", "1000"
    )
    assert loaded.returncode == 0, loaded.stderr
    return set(ids)


async def test_an_export_survives_a_kill_9_of_its_server(backend, tmp_path):
    # A database of its own: any other process sharing one (the session's app, whose export worker
    # polls every 2 s) may take the job over once the killed server's lease runs out, and writes
    # the files into its own directory: a CI run found the job completed and this server without
    # its file (404).
    (tmp_path / "db").mkdir()
    async with fresh_database(backend, tmp_path / "db") as database_url:
        ids = await _seed(database_url, tmp_path)
        extra = {
            "PUENTE_DATA_DIR": str(tmp_path / "data"),
            "PUENTE_EXPORT_PAGE_SIZE": "10",
            "PUENTE_EXPORT_LEASE_SECONDS": "2",
            "PUENTE_EXPORT_POLL_SECONDS": "0.5",
        }
        kick_off = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
        with serve(database_url, workers=1, extra_env=extra) as server:
            async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
                r = await http.get("/fhir/$export", params={"_type": "Patient"}, headers=kick_off)
                assert r.status_code == 202, r.text
                status_url = r.headers["content-location"].removeprefix(server.base)
                while True:
                    status = await http.get(status_url)
                    assert status.status_code == 202, "the export ended before the kill"
                    if not status.headers["x-progress"].endswith(" 0 resources"):
                        break
                    await asyncio.sleep(0.01)
                server.crash()
        with serve(database_url, workers=1, extra_env=extra) as server:
            async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
                deadline = time.monotonic() + 120
                while (status := await http.get(status_url)).status_code == 202:
                    assert time.monotonic() < deadline, "the export was not resumed"
                    await asyncio.sleep(0.2)
                assert status.status_code == 200, status.text
                [output] = status.json()["output"]
                assert output["count"] == COUNT
                ndjson = await http.get(output["url"].removeprefix(server.base))
        # Said first: a CI run once found a line without an id here, and only the answer can say why.
        assert ndjson.status_code == 200, ndjson.text[:500]
        exported = [fhir_json.loads(line)["id"] for line in ndjson.text.splitlines()]
        assert len(exported) == COUNT and set(exported) == ids  # nothing lost, nothing twice
        [job] = await query(database_url, "SELECT attempts FROM bulk_export_jobs")
        assert job.attempts == 2  # resumed by the second server, not started afresh


async def test_an_import_killed_mid_way_resumes_after_its_last_batch(database_url, tmp_path):
    await empty(database_url)
    ids = patients_ndjson(tmp_path / "patients.ndjson", COUNT)
    process = start(
        database_url,
        tmp_path,
        "import",
        str(tmp_path / "patients.ndjson"),
        "--no-derived",
        "--batch-size",
        "25",
        "--errors",
        str(tmp_path / "errors.ndjson"),
    )
    try:
        deadline = time.monotonic() + 120
        while not await query(database_url, "SELECT lines_done FROM bulk_import_progress"):
            assert process.poll() is None and time.monotonic() < deadline, "the import did not get going"
            await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    [(lines_done,)] = await query(database_url, "SELECT lines_done FROM bulk_import_progress")
    assert lines_done < COUNT, "the import ended before the kill"
    assert len(await stored(database_url, "Patient")) == lines_done  # every batch whole, or not at all
    resumed = puente(
        database_url,
        tmp_path,
        "import",
        str(tmp_path / "patients.ndjson"),
        "--no-derived",
        "--errors",
        str(tmp_path / "errors.ndjson"),
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{lines_done:,} already imported" in resumed.stdout
    final = await stored(database_url, "Patient")
    assert set(final) == set(ids) and set(final.values()) == {1}  # each once, none written twice
