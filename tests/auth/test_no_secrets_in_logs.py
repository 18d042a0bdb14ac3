"""Tokens never appear in logs, whatever the log level (Authlib itself logs issued tokens at DEBUG)."""

from __future__ import annotations

import logging

from api import services
from tests.auth import support
from tests.auth.support import REDIRECT, add_user, bearer, register


async def test_no_token_secret_code_or_password_reaches_a_log(http, auth_app, rsa, caplog):
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [support.PASSWORD]

    client_id, _ = await register(auth_app, scopes="system/*.rs", keys=(rsa,), admin=True)
    signed = support.assertion(client_id, rsa)
    secrets.append(signed)
    data = {"grant_type": "client_credentials", "client_assertion_type": support.ASSERTION_TYPE,
            "client_assertion": signed}
    token = (await http.post("/auth/token", data=data)).json()["access_token"]
    secrets.append(token)
    await http.post("/auth/token", data=data)  # replayed: refused, and logged as nothing but a refusal
    await http.get("/fhir/Patient/x", headers=bearer(token))
    await http.get("/fhir/Patient/x", headers=bearer(token[:-4] + "AAAA"))  # bad signature

    secret_client, client_secret = await register(auth_app, scopes="system/*.rs", secret=True)
    secrets.append(client_secret)
    await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(secret_client, client_secret))

    app_id, _ = await register(auth_app, scopes="user/*.rs offline_access", public=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await support.login(http, app_id, "rosa", scope="user/*.rs offline_access")
    code = support.redirect_params(response)["code"]
    tokens = (await support.exchange_code(http, app_id, code, verifier)).json()
    secrets += [code, verifier, tokens["access_token"], tokens["refresh_token"]]
    refreshed = (await support.refresh(http, app_id, tokens["refresh_token"])).json()
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]
    await support.refresh(http, app_id, tokens["refresh_token"])  # reuse: family revoked
    await http.post("/auth/revoke", data={"token": refreshed["refresh_token"], "client_id": app_id})
    await services.of_app(auth_app).audit.flush()

    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {getattr(record, 'args', '')}" for record in caplog.records
    )
    leaked = [s[:12] + "..." for s in secrets if s in logged]
    assert not leaked, leaked
