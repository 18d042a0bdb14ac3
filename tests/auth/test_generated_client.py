"""An integrator's path: generate a Python client from the published document with a standard generator
(openapi-python-client, pinned in the dev group), then create a Patient and run a typed search with it,
authorized by a real SMART backend token.

The client is generated from the Patient subset (tools/openapi_subset.py): the whole document makes a
36 MB client in about five minutes, the subset the same calls in seconds.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from api.openapi_examples import CHILD
from tests.auth import support
from tools.generate_openapi import TARGET
from tools.openapi_subset import subset

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "puente_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("client")
    document = root / "patient.json"
    document.write_text(json.dumps(subset(json.loads(TARGET.read_text()), {"Patient"})))
    config = root / "config.yaml"
    config.write_text(f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n")
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--config", str(config), "--meta", "none",
         "--output-path", str(root / PACKAGE)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr  # every operation generated
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_creates_a_patient_and_searches(generated, auth_app, http, rsa):
    # an integrator registered with `--admin` (a client bound to nothing else sees nothing)
    client_id, _ = await support.register(auth_app, scopes="system/Patient.cruds", keys=(rsa,), admin=True)
    token = await support.access_token(http, client_id, rsa, "system/Patient.cruds")
    client = _module("client").AuthenticatedClient(base_url=support.BASE, token=token)
    client.set_async_httpx_client(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=support.BASE,
                          headers={"Authorization": f"Bearer {token}"})
    )
    patient_model = _module("models.patient").Patient
    create = _module("api.patient.create_patient")
    search = _module("api.patient.search_patient")
    read = _module("api.patient.read_patient")

    created = await create.asyncio_detailed(client=client, body=patient_model.from_dict(CHILD))
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, patient_model)
    assert created.parsed.birth_date == "2025-04-02" and created.parsed.id
    assert created.headers["location"].startswith(f"{support.FHIR_BASE}/Patient/{created.parsed.id}/_history/1")

    bundle = await search.asyncio(client=client, birthdate="ge2025-01-01", family="Rodríguez", field_count=10)
    assert bundle.total == 1
    assert bundle.entry[0].resource["id"] == created.parsed.id
    assert (await search.asyncio(client=client, birthdate="lt2025-01-01")).total == 0

    missing = await read.asyncio_detailed(client=client, id="nobody")
    assert missing.status_code == 404
    assert type(missing.parsed).__name__ == "OperationOutcome"  # errors are parsed, not dropped
    await client.get_async_httpx_client().aclose()
