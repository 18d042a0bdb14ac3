"""SMART discovery (.well-known/smart-configuration, CapabilityStatement.rest.security), the JWKS, and
the signing keys: generated on first run into PUENTE_DATA_DIR, or supplied, never in the repository.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from api.app import create_app
from auth.signing_keys import KEY_FILE_NAME, SigningKeyError, load_or_create
from tests.auth import support
from tests.conftest import make_settings


async def test_smart_configuration(http):
    r = await http.get("/fhir/.well-known/smart-configuration", headers={"Accept": "application/fhir+json"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"  # whatever the Accept header says
    config = r.json()
    assert config["token_endpoint"] == support.TOKEN_URL
    assert config["authorization_endpoint"] == f"{support.BASE}/auth/authorize"
    assert config["introspection_endpoint"] == f"{support.BASE}/auth/introspect"
    assert config["revocation_endpoint"] == f"{support.BASE}/auth/revoke"
    assert config["jwks_uri"] == f"{support.BASE}/auth/jwks"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert set(config["token_endpoint_auth_methods_supported"]) == {"private_key_jwt", "client_secret_basic"}
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    for capability in ("launch-standalone", "client-public", "client-confidential-asymmetric",
                       "permission-offline", "permission-v1", "permission-v2"):
        assert capability in config["capabilities"]


async def test_capability_statement_security(http):
    security = (await http.get("/fhir/metadata")).json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert security["extension"][0]["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["token"] == support.TOKEN_URL
    assert uris["authorize"] == f"{support.BASE}/auth/authorize"


async def test_jwks_has_public_keys_only(http, auth_app):
    jwks = (await http.get("/auth/jwks")).json()
    assert [k["kid"] for k in jwks["keys"]] == [support.service(auth_app).keys.signing_key.kid]
    for key in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert key["use"] == "sig" and key["alg"] == "RS256"


async def test_auth_off_serves_no_auth_endpoints(client):
    assert (await client.get("/auth/jwks")).status_code == 404
    assert (await client.get("/fhir/.well-known/smart-configuration")).status_code == 404
    assert "security" not in (await client.get("/fhir/metadata")).json()["rest"][0]


def test_keys_are_generated_on_first_run_private_to_the_owner(tmp_path):
    data_dir = tmp_path / "data"
    keys = load_or_create(data_dir)
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "d" in json.loads(path.read_text())["keys"][0]  # the private key lives here, and only here
    assert load_or_create(data_dir).signing_key.kid == keys.signing_key.kid  # the next run reuses it


async def test_the_app_generates_keys_at_startup_not_at_import(database_url, tmp_path):
    data_dir = tmp_path / "fresh"
    app = create_app(make_settings(database_url, auth="on", data_dir=data_dir, base_url=support.BASE))
    assert not (data_dir / KEY_FILE_NAME).exists()  # building the app (e.g. for the OpenAPI file) writes nothing
    async with app.router.lifespan_context(app):
        assert (data_dir / KEY_FILE_NAME).exists()


def test_keys_can_be_supplied(tmp_path):
    key = ECKey.generate_key("P-256", parameters={"kid": "ops-2026"}, private=True)
    supplied = tmp_path / "keys.json"
    supplied.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    keys = load_or_create(tmp_path / "unused", supplied)
    assert keys.signing_key.kid == "ops-2026"
    assert keys.algorithm == "ES256"
    assert not (tmp_path / "unused").exists()
    pem = tmp_path / "key.pem"
    pem.write_bytes(support.rsa_key("pem").as_pem(private=True))
    assert load_or_create(tmp_path, pem).algorithm == "RS256"


def test_a_public_key_is_not_a_signing_key(tmp_path):
    supplied = tmp_path / "keys.json"
    supplied.write_text(json.dumps(support.public_jwks(support.ec_key("pub"))))
    with pytest.raises(SigningKeyError):
        load_or_create(tmp_path, supplied)


def test_no_key_material_is_committed():
    root = Path(__file__).resolve().parents[2]
    tracked = os.popen(f"git -C {root} ls-files").read().split()
    assert not [f for f in tracked if f.endswith(KEY_FILE_NAME) or f.endswith(".pem")]
