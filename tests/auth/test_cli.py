"""`puente clients add/list/remove` and `puente users add/list/remove`, against the test databases."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.auth import support
from tests.auth.conftest import empty_auth_tables


@pytest.fixture
async def cli(database_url):
    await empty_auth_tables(database_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), env={"PUENTE_DATABASE_URL": database_url}, input=input)

    return run


def test_add_a_clinic_with_a_jwks_file(cli, tmp_path, rsa):
    jwks = tmp_path / "clinic.jwks.json"
    jwks.write_text(json.dumps(support.public_jwks(rsa)))
    r = cli("clients", "add", "--name", "Centro de Salud A", "--scopes", "system/ServiceRequest.rs system/Task.rus",
            "--jwks-file", str(jwks), "--organization", "Organization/clinic-a")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["client_id"]
    assert shown["token_endpoint_auth_method"] == "private_key_jwt"
    assert shown["organization"] == "Organization/clinic-a"
    assert shown["grant_types"] == ["client_credentials"]
    assert "client_secret" not in shown
    listed = json.loads(cli("clients", "list").output)
    assert [c["client_id"] for c in listed] == [shown["client_id"]]
    assert listed[0]["jwks_kids"] == ["rsa-1"]
    assert json.loads(cli("clients", "remove", shown["client_id"]).output) == {"removed": shown["client_id"]}
    assert json.loads(cli("clients", "list").output) == []


def test_add_with_a_secret_shows_it_once(cli):
    r = cli("clients", "add", "--name", "Integrator", "--scopes", "system/*.rs", "--secret", "--admin")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert len(shown["client_secret"]) >= 40
    assert shown["admin"] is True
    assert shown["client_secret"] not in cli("clients", "list").output


def test_add_a_jwks_url_client_and_a_public_app(cli):
    r = cli("clients", "add", "--name", "EHR", "--scopes", "system/*.rs", "--jwks-url", "https://ehr.example.org/jwks")
    assert json.loads(r.output)["jwks_url"] == "https://ehr.example.org/jwks"
    r = cli("clients", "add", "--name", "CHW app", "--scopes", "user/*.cruds offline_access", "--public",
            "--redirect-uri", "org.puente.chw:/callback")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["token_endpoint_auth_method"] == "none"
    assert shown["grant_types"] == ["authorization_code", "refresh_token"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "system/*.rs"], "exactly one of"),
        (["--scopes", "system/*.rs", "--secret", "--jwks-url", "https://x.example/j"], "exactly one of"),
        (["--scopes", "system/Patient.dus", "--secret"], "not a SMART scope"),
        (["--scopes", "system/Patient.rs?gender=female", "--secret"], "not supported"),
        (["--scopes", "system/*.rs", "--secret", "--organization", "clinic-a"], "Organization/ID"),
        (["--scopes", "system/*.rs", "--jwks-url", "http://ehr.example.org/jwks"], "https"),
        (["--scopes", "user/*.rs", "--public"], "redirect-uri"),
    ],
)
def test_bad_registrations_are_refused(cli, args, message):
    r = cli("clients", "add", "--name", "x", *args)
    assert r.exit_code == 2
    assert message in r.output


def test_a_private_key_is_refused(cli, tmp_path, rsa):
    jwks = tmp_path / "private.json"
    jwks.write_text(json.dumps({"keys": [rsa.as_dict(private=True)]}))
    r = cli("clients", "add", "--name", "x", "--scopes", "system/*.rs", "--jwks-file", str(jwks))
    assert r.exit_code == 2
    assert "private key" in r.output


def test_users(cli):
    r = cli("users", "add", "--username", "rosa", "--practitioner", "Practitioner/chw-1", "--password",
            "long enough password")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["role"] == "chw"
    r = cli("users", "add", "--username", "lucia", "--practitioner", "Practitioner/sup-1", "--role", "supervisor",
            input="another good password\nanother good password\n")
    assert r.exit_code == 0, r.output
    assert {u["username"] for u in json.loads(cli("users", "list").output)} == {"rosa", "lucia"}
    assert cli("users", "add", "--username", "rosa", "--practitioner", "Practitioner/chw-1", "--password",
               "long enough password").exit_code == 2  # already exists
    assert cli("users", "add", "--username", "x", "--practitioner", "Patient/1", "--password", "long enough password"
               ).exit_code == 2
    assert cli("users", "add", "--username", "x", "--practitioner", "Practitioner/1", "--role", "boss", "--password",
               "long enough password").exit_code == 2
    assert cli("users", "remove", "rosa").exit_code == 0
    assert cli("users", "remove", "rosa").exit_code == 2
