"""SMART App Launch as apps expect it: `openid fhirUser` brings an id_token naming the user's
Practitioner, and the login page speaks the CHWs' language (Spanish), scopes in plain words."""

from __future__ import annotations

from joserfc import jwt

from tests.auth import support
from tests.auth.support import FHIR_BASE, REDIRECT, add_user, authorize_params, pkce, refresh, register, user_tokens

SCOPES = "openid fhirUser user/*.cruds offline_access"


async def test_openid_fhiruser_gives_an_id_token_naming_the_practitioner(http, auth_app):
    client_id, _ = await register(auth_app, scopes=SCOPES, public=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa", scope=SCOPES)
    keys = support.service(auth_app).keys.verification_keys()
    id_token = jwt.decode(tokens["id_token"], keys)
    claims = id_token.claims
    assert claims["fhirUser"] == f"{FHIR_BASE}/Practitioner/chw-1"
    assert claims["aud"] == client_id
    assert claims["iss"] == f"{support.BASE}/auth"
    assert claims["preferred_username"] == "rosa" and claims["exp"] > claims["iat"]
    discovery = (await http.get("/auth/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == claims["iss"]
    assert id_token.header["alg"] in discovery["id_token_signing_alg_values_supported"]
    renewed = (await refresh(http, client_id, tokens["refresh_token"])).json()
    assert jwt.decode(renewed["id_token"], keys).claims["fhirUser"] == claims["fhirUser"]


async def test_the_id_token_echoes_the_sign_in_nonce(http, auth_app):
    """OpenID Connect Core 3.1.2.1: an app that sent a nonce checks it comes back in the id_token."""
    client_id, _ = await register(auth_app, scopes=SCOPES, public=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    keys = support.service(auth_app).keys.verification_keys()
    tokens = await user_tokens(http, client_id, "rosa", scope=SCOPES, nonce="n-0S6_WzA2Mj")
    assert jwt.decode(tokens["id_token"], keys).claims["nonce"] == "n-0S6_WzA2Mj"
    renewed = (await refresh(http, client_id, tokens["refresh_token"])).json()
    assert "nonce" not in jwt.decode(renewed["id_token"], keys).claims  # a refresh is no new sign-in
    without = await user_tokens(http, client_id, "rosa", scope=SCOPES)
    assert "nonce" not in jwt.decode(without["id_token"], keys).claims


async def test_without_openid_there_is_no_id_token(http, auth_app):
    client_id, _ = await register(auth_app, scopes=SCOPES, public=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa", scope="user/*.cruds")
    assert "id_token" not in tokens


async def test_openid_without_fhiruser_does_not_name_the_practitioner(http, auth_app):
    client_id, _ = await register(auth_app, scopes=SCOPES, public=True, redirect_uris=(REDIRECT,))
    await add_user(auth_app, "rosa", "Practitioner/chw-1")
    tokens = await user_tokens(http, client_id, "rosa", scope="openid user/*.cruds")
    claims = jwt.decode(tokens["id_token"], support.service(auth_app).keys.verification_keys()).claims
    assert "fhirUser" not in claims and claims["preferred_username"] == "rosa"


async def test_the_smart_configuration_advertises_openid(http):
    config = (await http.get("/fhir/.well-known/smart-configuration")).json()
    assert {"openid", "fhirUser"} <= set(config["scopes_supported"])
    assert "sso-openid-connect" in config["capabilities"]


async def test_the_login_page_is_in_spanish_with_scopes_in_plain_words(http, auth_app):
    client_id, _ = await register(auth_app, scopes=SCOPES + " user/Patient.rs", public=True, redirect_uris=(REDIRECT,))
    page = await http.get("/auth/authorize", params=authorize_params(client_id, pkce()[1], SCOPES + " user/Patient.rs"))
    text = page.text
    assert '<html lang="es">' in text and "Ingresar a Puente" in text
    assert "Usuario" in text and "Contraseña" in text and "Ingresar y permitir" in text
    assert "Saber qué trabajador de salud es usted en Puente" in text
    assert "Seguir sincronizando aunque pasen días sin conexión" in text
    assert "Registrar, ver, actualizar, borrar y buscar todos los datos de salud a los que usted tiene acceso" in text
    assert "Ver y buscar los pacientes a los que usted tiene acceso" in text
    assert ">user/*.cruds<" not in text  # the raw scope is only in a title attribute
