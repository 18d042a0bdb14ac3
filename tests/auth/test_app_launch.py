"""SMART App Launch (standalone) for CHW apps: authorization code + PKCE S256, the login page,
offline_access refresh tokens that rotate and can be revoked (RFC 6749 4.1 and 6, RFC 7636, RFC 7009).
"""

from __future__ import annotations

import re

from joserfc import jwt

from tests.auth import support
from tests.auth.support import (
    FHIR_BASE,
    REDIRECT,
    add_user,
    authorize_params,
    bearer,
    exchange_code,
    login,
    pkce,
    redirect_params,
    refresh,
    register,
    user_tokens,
)

CHW_APP = "user/*.cruds offline_access"


async def chw_app(auth_app) -> str:
    client_id, _ = await register(auth_app, scopes=CHW_APP, public=True, redirect_uris=(REDIRECT,))
    return client_id


async def test_chw_logs_in_with_pkce_and_gets_tokens_for_their_practitioner(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await login(http, client_id, "rosa", state="xyz")
    params = redirect_params(response)
    assert params["state"] == "xyz"
    tokens = await exchange_code(http, client_id, params["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["scope"] == CHW_APP
    assert body["refresh_token"]
    assert body["expires_in"] == 300
    claims = jwt.decode(body["access_token"], support.service(auth_app).keys.verification_keys()).claims
    assert claims["fhirUser"] == "Practitioner/chw-1"
    assert claims["puente_role"] == "chw"
    assert claims["aud"] == FHIR_BASE
    # The token works on the FHIR API (404: nothing there yet, but authenticated and in scope).
    assert (await http.get("/fhir/Patient/unknown", headers=bearer(body["access_token"]))).status_code == 404


async def test_login_page_is_plain_html_that_cannot_be_framed(http, auth_app):
    client_id = await chw_app(auth_app)
    page = await http.get("/auth/authorize", params=authorize_params(client_id, pkce()[1]))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert '<input name="password" type="password"' in page.text


async def test_authorize_post_shows_the_login_page(http, auth_app):
    client_id = await chw_app(auth_app)
    page = await http.post("/auth/authorize", data=authorize_params(client_id, pkce()[1]))
    assert page.status_code == 200
    assert 'name="username"' in page.text


async def test_wrong_password_shows_the_page_again(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, _ = await login(http, client_id, "rosa", password="wrong password")
    assert response.status_code == 401
    assert "Usuario o contraseña incorrectos" in response.text
    response, _ = await login(http, client_id, "nobody", password="wrong password")
    assert response.status_code == 401


async def test_cancel_returns_access_denied(http, auth_app):
    client_id = await chw_app(auth_app)
    params = authorize_params(client_id, pkce()[1])
    r = await http.post("/auth/authorize", data={**params, "deny": "1"})
    assert redirect_params(r)["error"] == "access_denied"


async def test_unknown_client_or_unregistered_redirect_is_never_redirected_to(http, auth_app):
    client_id = await chw_app(auth_app)
    for params in (
        authorize_params("no-such-client", pkce()[1]),
        {**authorize_params(client_id, pkce()[1]), "redirect_uri": "https://evil.example/cb"},
    ):
        r = await http.get("/auth/authorize", params=params)
        assert r.status_code == 400
        assert "location" not in r.headers
        assert r.headers["content-type"].startswith("text/html")
        assert "No se pudo autorizar" in r.text and "no está registrada en Puente" in r.text  # in Spanish


async def test_pkce_is_required(http, auth_app):
    client_id = await chw_app(auth_app)
    params = authorize_params(client_id, pkce()[1])
    del params["code_challenge"], params["code_challenge_method"]
    r = await http.get("/auth/authorize", params=params)
    assert redirect_params(r)["error"] == "invalid_request"


async def test_pkce_plain_is_refused(http, auth_app):
    client_id = await chw_app(auth_app)
    verifier, _ = pkce()
    r = await http.get("/auth/authorize", params=authorize_params(client_id, verifier, code_challenge_method="plain"))
    params = redirect_params(r)
    assert params["error"] == "invalid_request"
    assert "S256" in params["error_description"]


async def test_aud_must_be_this_fhir_server(http, auth_app):
    client_id = await chw_app(auth_app)
    r = await http.get("/auth/authorize", params=authorize_params(client_id, pkce()[1], aud="https://other.example/fhir"))
    assert redirect_params(r)["error"] == "invalid_request"


async def test_wrong_code_verifier(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, _ = await login(http, client_id, "rosa")
    r = await exchange_code(http, client_id, redirect_params(response)["code"], pkce()[0])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


async def test_missing_code_verifier(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, _ = await login(http, client_id, "rosa")
    r = await http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": client_id,
                                             "code": redirect_params(response)["code"], "redirect_uri": REDIRECT})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


async def test_a_code_works_once(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await login(http, client_id, "rosa")
    code = redirect_params(response)["code"]
    assert (await exchange_code(http, client_id, code, verifier)).status_code == 200
    again = await exchange_code(http, client_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_replayed_code_revokes_the_tokens_issued_from_it(http, auth_app):
    """RFC 6749 4.1.2: a code presented twice is in someone else's hands; what it bought is revoked."""
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await login(http, client_id, "rosa")
    code = redirect_params(response)["code"]
    tokens = (await exchange_code(http, client_id, code, verifier)).json()
    assert (await http.get("/fhir/Patient", headers=bearer(tokens["access_token"]))).status_code == 200
    assert (await exchange_code(http, client_id, code, verifier)).status_code == 400  # the replay
    revoked = await http.get("/fhir/Patient", headers=bearer(tokens["access_token"]))
    assert revoked.status_code == 401
    assert (await refresh(http, client_id, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    introspected = await http.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": client_id})
    assert introspected.json().get("active") is not True
    # another login is not affected
    fresh = await user_tokens(http, client_id, "rosa")
    assert (await http.get("/fhir/Patient", headers=bearer(fresh["access_token"]))).status_code == 200


async def test_a_code_is_bound_to_its_client(http, auth_app):
    client_id = await chw_app(auth_app)
    other = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await login(http, client_id, "rosa")
    r = await exchange_code(http, other, redirect_params(response)["code"], verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


async def test_no_refresh_token_without_offline_access(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    body = await user_tokens(http, client_id, "rosa", scope="user/*.rs")
    assert "refresh_token" not in body


async def test_offline_sync_with_rotating_refresh_tokens(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    first = await user_tokens(http, client_id, "rosa")
    # Days later, back in coverage: the refresh token gets a new access token and a new refresh token.
    second = await refresh(http, client_id, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert (await http.get("/fhir/Patient/x", headers=bearer(second.json()["access_token"]))).status_code == 404
    third = await refresh(http, client_id, second.json()["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    first = await user_tokens(http, client_id, "rosa")
    second = (await refresh(http, client_id, first["refresh_token"])).json()
    stolen = await refresh(http, client_id, first["refresh_token"])  # a copy of the old one shows up
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # ...so the legitimate newer token is revoked too: the person signs in again.
    assert (await refresh(http, client_id, second["refresh_token"])).status_code == 400


async def test_revoked_refresh_token(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa")
    r = await http.post("/auth/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token",
                                              "client_id": client_id})
    assert r.status_code == 200
    again = await refresh(http, client_id, tokens["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_refresh_token_of_another_client(http, auth_app):
    client_id = await chw_app(auth_app)
    other = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa")
    assert (await refresh(http, other, tokens["refresh_token"])).status_code == 400


async def test_removed_user_cannot_refresh(http, auth_app):
    client_id = await chw_app(auth_app)
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa")
    assert await support.service(auth_app).store.remove_user("rosa")
    assert (await refresh(http, client_id, tokens["refresh_token"])).status_code == 400


async def test_unknown_refresh_token(http, auth_app):
    client_id = await chw_app(auth_app)
    r = await refresh(http, client_id, "made-up")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


async def test_confidential_app_with_a_secret(http, auth_app):
    client_id, secret = await register(auth_app, scopes=CHW_APP, secret=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    response, verifier = await login(http, client_id, "rosa")
    code = redirect_params(response)["code"]
    without = await exchange_code(http, client_id, code, verifier)
    assert without.status_code == 401  # a confidential client must authenticate
    response, verifier = await login(http, client_id, "rosa")
    r = await http.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": redirect_params(response)["code"], "redirect_uri": REDIRECT,
              "code_verifier": verifier},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text


async def test_users_never_get_system_scopes(http, auth_app):
    client_id, _ = await register(auth_app, scopes="system/*.cruds user/Patient.rs", public=True,
                                  redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    body = await user_tokens(http, client_id, "rosa", scope="system/*.cruds user/Patient.rs")
    assert body["scope"] == "user/Patient.rs"


async def test_standalone_launch_with_a_patient_picked_at_login(http, auth_app):
    client_id, _ = await register(auth_app, scopes="patient/*.rs launch/patient", public=True,
                                  redirect_uris=(REDIRECT,))
    await add_user(auth_app, "admin-ana", "Practitioner/admin-1", role="admin")
    admin = bearer(support.sign_access_token(auth_app, support.token_claims()))
    for pid in ("p1", "p2"):
        await http.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=admin)
    verifier, challenge = pkce()
    params = authorize_params(client_id, challenge, "patient/*.rs launch/patient")
    page = await http.get("/auth/authorize", params=params)
    assert 'name="patient"' in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    unknown = await http.post("/auth/authorize", data={**form, "username": "admin-ana", "password": support.PASSWORD,
                                                       "patient": "nobody"})
    assert unknown.status_code == 400
    r = await http.post("/auth/authorize", data={**form, "username": "admin-ana", "password": support.PASSWORD,
                                                 "patient": "p1"})
    tokens = (await exchange_code(http, client_id, redirect_params(r)["code"], verifier)).json()
    assert tokens["patient"] == "p1"
    assert tokens["scope"] == "patient/*.rs launch/patient"
    assert (await http.get("/fhir/Patient/p1", headers=bearer(tokens["access_token"]))).status_code == 200
    assert (await http.get("/fhir/Patient/p2", headers=bearer(tokens["access_token"]))).status_code == 404


async def test_patient_scopes_are_dropped_without_a_launch_patient(http, auth_app):
    client_id, _ = await register(auth_app, scopes="patient/*.rs user/Patient.r", public=True,
                                  redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    body = await user_tokens(http, client_id, "rosa", scope="patient/*.rs user/Patient.r")
    assert body["scope"] == "user/Patient.r"
    assert "patient" not in body
