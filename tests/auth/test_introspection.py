"""Token introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import time

from tests.auth import support
from tests.auth.support import REDIRECT, add_user, register, sign_access_token, token_claims, user_tokens

CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}


async def introspect(http, token: str, client_id: str, secret: str, hint: str | None = None) -> dict:
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    r = await http.post("/auth/introspect", data=data, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return dict(r.json())


async def test_a_client_introspects_its_own_access_token(http, auth_app):
    client_id, secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    token = (await http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))).json()
    body = await introspect(http, token["access_token"], client_id, secret)
    assert body["active"] is True
    assert body["client_id"] == client_id
    assert body["scope"] == "system/Patient.rs"
    assert body["token_type"] == "Bearer"
    assert body["exp"] > time.time()


async def test_another_client_learns_nothing(http, auth_app):
    owner, owner_secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    other, other_secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    token = (await http.post("/auth/token", data=CLIENT_CREDENTIALS, auth=(owner, owner_secret))).json()
    assert await introspect(http, token["access_token"], other, other_secret) == {"active": False}


async def test_an_admin_client_introspects_any_token(http, auth_app):
    owner, owner_secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    admin, admin_secret = await register(auth_app, scopes="system/*.rs", secret=True, admin=True)
    token = (await http.post("/auth/token", data=CLIENT_CREDENTIALS, auth=(owner, owner_secret))).json()
    assert (await introspect(http, token["access_token"], admin, admin_secret))["active"] is True


async def test_expired_or_foreign_tokens_are_inactive(http, auth_app):
    admin, secret = await register(auth_app, scopes="system/*.rs", secret=True, admin=True)
    now = int(time.time())
    expired = sign_access_token(auth_app, token_claims(iat=now - 900, exp=now - 600, client_id=admin))
    assert await introspect(http, expired, admin, secret) == {"active": False}
    assert await introspect(http, "not-a-token", admin, secret) == {"active": False}


async def test_refresh_tokens_introspect_until_revoked(http, auth_app):
    app_id, app_secret = await register(auth_app, scopes="user/*.rs offline_access", secret=True,
                                        redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await support.login(http, app_id, "rosa", scope="user/*.rs offline_access")
    tokens = (await http.post("/auth/token", auth=(app_id, app_secret), data={
        "grant_type": "authorization_code", "code": support.redirect_params(response)["code"],
        "redirect_uri": REDIRECT, "code_verifier": verifier})).json()
    body = await introspect(http, tokens["refresh_token"], app_id, app_secret, "refresh_token")
    assert body["active"] is True and body["token_type"] == "refresh_token"
    revoked = await http.post("/auth/revoke", data={"token": tokens["refresh_token"]}, auth=(app_id, app_secret))
    assert revoked.status_code == 200
    assert await introspect(http, tokens["refresh_token"], app_id, app_secret) == {"active": False}


async def test_introspection_requires_client_authentication(http, auth_app):
    r = await http.post("/auth/introspect", data={"token": "x"})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


async def test_revoking_an_unknown_token_is_fine(http, auth_app):
    client_id, secret = await register(auth_app, scopes="system/Patient.rs", secret=True)
    r = await http.post("/auth/revoke", data={"token": "never-issued"}, auth=(client_id, secret))
    assert r.status_code == 200  # RFC 7009 2.2: invalid tokens do not cause an error


async def test_a_client_cannot_revoke_another_clients_token(http, auth_app):
    client_id = (await register(auth_app, scopes="user/*.rs offline_access", public=True, redirect_uris=(REDIRECT,)))[0]
    thief = (await register(auth_app, scopes="user/*.rs offline_access", public=True, redirect_uris=(REDIRECT,)))[0]
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa", scope="user/*.rs offline_access")
    r = await http.post("/auth/revoke", data={"token": tokens["refresh_token"], "client_id": thief})
    assert r.status_code == 400
    assert (await support.refresh(http, client_id, tokens["refresh_token"])).status_code == 200
