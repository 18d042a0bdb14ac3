"""An export as SMART's bulk-data-client runs it, against `puente serve`: a client
registered with `puente clients add --jwks-file`, a backend-services token (RS384 assertion), the
kick-off, status polls that honour Retry-After, every file downloaded with the token, then the job
deleted. (The client itself is not published on the npm registry; this is its protocol, step by
step: bulk-data-client's `src/lib/BulkDataClient.ts` kick-off, status and download stages.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx

from fhir_mappings import fhir_json
from tests.auth import support
from tests.bulk.cli_support import PUENTE, empty, env, patients_ndjson, puente
from tests.fixtures.live_server import serve


def _register(database_url, data_dir, key, scopes, *extra) -> str:
    jwks = data_dir / "client-jwks.json"
    jwks.write_text(json.dumps(support.public_jwks(key)))
    done = subprocess.run(
        [
            PUENTE,
            "clients",
            "add",
            "--name",
            "Ministry analytics",
            "--scopes",
            scopes,
            "--jwks-file",
            str(jwks),
            *extra,
        ],
        env=env(database_url, data_dir),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["client_id"])


async def test_a_backend_services_client_exports_from_a_running_puente(database_url, tmp_path):
    await empty(database_url)
    ids = set(patients_ndjson(tmp_path / "patients.ndjson", 120))
    loaded = puente(database_url, tmp_path, "import", str(tmp_path / "patients.ndjson"), "--no-derived")
    assert loaded.returncode == 0, loaded.stderr
    key = support.rsa_key("ministry-1")
    client_id = _register(database_url, tmp_path, key, "system/*.rs", "--admin")
    extra = {
        "PUENTE_AUTH": "on",
        "PUENTE_DATA_DIR": str(tmp_path),
        "AUTHLIB_INSECURE_TRANSPORT": "1",
        "PUENTE_EXPORT_PAGE_SIZE": "50",
    }
    with serve(database_url, workers=1, extra_env=extra) as server:  # one: starts in time on a busy machine
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            smart = (await http.get("/fhir/.well-known/smart-configuration")).json()
            assertion = support.assertion(client_id, key, aud=smart["token_endpoint"])
            issued = await http.post(
                smart["token_endpoint"],
                data={
                    "grant_type": "client_credentials",
                    "scope": "system/*.rs",
                    "client_assertion_type": support.ASSERTION_TYPE,
                    "client_assertion": assertion,
                },
            )
            assert issued.status_code == 200, issued.text
            token = {"Authorization": f"Bearer {issued.json()['access_token']}"}

            kick_off = await http.get(
                "/fhir/Patient/$export",
                params={"_type": "Patient"},
                headers={**token, "Accept": "application/fhir+json", "Prefer": "respond-async"},
            )
            assert kick_off.status_code == 202, kick_off.text
            status_url = kick_off.headers["content-location"]
            deadline = time.monotonic() + 120
            while (status := await http.get(status_url, headers=token)).status_code == 202:
                assert time.monotonic() < deadline
                await asyncio.sleep(min(float(status.headers["retry-after"]), 0.5))
            assert status.status_code == 200, status.text
            manifest = status.json()
            assert manifest["requiresAccessToken"] is True
            exported = []
            for item in manifest["output"]:
                assert (await http.get(item["url"])).status_code == 401  # the files need the token
                ndjson = await http.get(item["url"], headers={**token, "Accept": "application/fhir+ndjson"})
                assert ndjson.status_code == 200
                exported += [fhir_json.loads(line)["id"] for line in ndjson.text.splitlines()]
            assert sorted(exported) == sorted(ids)
            assert (await http.delete(status_url, headers=token)).status_code == 202
            assert (await http.get(status_url, headers=token)).status_code == 404
