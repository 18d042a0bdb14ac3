"""`puente partners add/list/update/remove/keygen`, against the test databases (README, "Partner clinics")."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from cli.main import app
from exchange.partner_tables import partner_attempts, partner_outbox, partners
from exchange.tokens import load_key
from storage.database import create_engine
from tests.exchange.test_partners import no_partner_left  # noqa: F401  (autouse fixture)

ORG = "Organization/clinic-a"


@pytest.fixture
async def cli(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            for table in (partners, partner_outbox, partner_attempts):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()
    runner = CliRunner()

    async def run(*args: str):
        # In a thread: this session's app keeps running its exchange workers meanwhile (a sync test
        # would pause them, perhaps inside a write transaction that SQLite's other writers then wait on).
        return await asyncio.to_thread(runner.invoke, app, list(args), env={"PUENTE_DATABASE_URL": database_url})

    return run


@pytest.fixture
async def key_file(tmp_path, cli):
    path = tmp_path / "puente-at-clinic-a.pem"
    r = await cli("partners", "keygen", str(path))
    assert r.exit_code == 0, r.output
    return path


async def add(cli, key_file, **changes: str):
    # Loopback addresses: the session's exchange workers try a registered partner (here, refused at once).
    options = {"--name": "C.S. La Esperanza", "--base-url": "https://127.0.0.1:1/fhir",
               "--token-url": "https://127.0.0.1:1/auth/token", "--client-id": "puente",
               "--key-file": str(key_file), "--organization": ORG, **changes}
    return await cli("partners", "add", *[part for pair in options.items() for part in pair])


async def test_add_prints_the_partner_and_the_public_jwks_the_clinic_registers(cli, key_file):
    r = await add(cli, key_file)
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["partner"]["organization"] == ORG and shown["partner"]["client_id"] == "puente"
    assert shown["partner"]["key_file"] == str(key_file.resolve())  # the path, never the key
    [jwk] = shown["jwks"]["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-384", "ES384", "sig")
    assert jwk["kid"] == load_key(key_file).kid and "d" not in jwk  # public only
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"

    listed = json.loads((await cli("partners", "list")).stdout)
    [(name, pending, error)] = [(p["name"], p["pending"], p["last_error"]) for p in listed]
    assert (name, pending) == ("C.S. La Esperanza", 0)
    # The session's exchange workers may have tried it already (its loopback endpoints refuse at once):
    # the listing then shows why (a CI run listed it a moment after their first pull).
    assert error is None or error == "token: token endpoint unreachable: ConnectError", error
    assert "BEGIN" not in (await cli("partners", "list")).output

    r = await cli("partners", "remove", "C.S. La Esperanza")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["pending_given_up"] == 0
    assert json.loads((await cli("partners", "list")).stdout) == []
    r = await cli("partners", "remove", "C.S. La Esperanza")
    assert r.exit_code != 0 and "no partner" in r.output


async def test_an_rsa_key_as_a_jwk_signs_rs384(cli, tmp_path):
    from joserfc.jwk import RSAKey

    path = tmp_path / "rsa.jwk.json"
    path.write_text(json.dumps(RSAKey.generate_key(2048).as_dict(private=True)))
    path.chmod(0o644)
    r = await add(cli, path)
    assert r.exit_code == 0, r.output
    assert "can be read by others than its owner" in r.stderr
    assert json.loads(r.stdout)["jwks"]["keys"][0]["alg"] == "RS384"


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--key-file", "/nonexistent/puente.pem", "does not exist"),
    ("--base-url", "ftp://ehr.clinic-a.example/fhir", "--base-url must be an absolute https URL"),
    ("--base-url", "ehr.clinic-a.example/fhir", "--base-url must be an absolute https URL"),
    ("--base-url", "http://ehr.clinic-a.example/fhir", "--base-url must be https"),
    ("--token-url", "https://127.0.0.1:99999/token", "--token-url has a bad port"),
    ("--organization", "Patient/p1", "--organization must look like Organization/ID"),
    ("--organization", "clinic-a", "--organization must look like Organization/ID"),
    ("--client-id", "has spaces", "--client-id"),
])
async def test_bad_input_is_refused_with_a_clear_error(cli, key_file, option, value, says):
    r = await add(cli, key_file, **{option: value})
    assert r.exit_code != 0
    assert says in r.output and "Traceback" not in r.output
    assert json.loads((await cli("partners", "list")).stdout) == []  # nothing half-registered


async def test_a_key_file_that_is_no_usable_key_is_refused(cli, tmp_path):
    from joserfc.jwk import ECKey

    public = tmp_path / "public.pem"
    public.write_bytes(ECKey.generate_key("P-384").as_pem(private=False))
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(ECKey.generate_key("P-256").as_pem(private=True))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for path, says in ((public, "holds a public key"), (p256, "ES384 needs P-384"), (garbage, "neither a PEM")):
        r = await add(cli, path)
        assert r.exit_code != 0 and says in r.output, r.output


async def test_one_partner_per_organization_and_name(cli, key_file):
    r = await add(cli, key_file)
    assert r.exit_code == 0, r.output
    r = await add(cli, key_file, **{"--name": "Another name"})
    assert r.exit_code != 0 and "organization is registered already" in r.output
    r = await add(cli, key_file, **{"--organization": "Organization/clinic-b"})
    assert r.exit_code != 0 and "name is registered already" in r.output


async def test_update_corrects_the_client_id_and_keygen_never_overwrites(cli, key_file):
    r = await add(cli, key_file)
    assert r.exit_code == 0, r.output
    r = await cli("partners", "update", "C.S. La Esperanza", "--client-id", "puente-2")
    assert r.exit_code == 0, r.output
    assert json.loads((await cli("partners", "list")).stdout)[0]["client_id"] == "puente-2"
    r = await cli("partners", "update", "C.S. La Esperanza", "--token-url", "gopher://x")
    assert r.exit_code != 0 and "--token-url" in r.output
    r = await cli("partners", "keygen", str(key_file))
    assert r.exit_code != 0 and "exists already" in r.output
