"""Builders for the auth tests: real keys, real client assertions, real logins over HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

from api import services
from auth.hashing import digest, hash_password
from auth.models import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT, PUBLIC, Client
from auth.service import AuthService

BASE = "https://puente.test"
FHIR_BASE = f"{BASE}/fhir"
TOKEN_URL = f"{BASE}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT = "https://chw-app.example.org/callback"
PASSWORD = "correct horse battery"


def rsa_key(kid: str) -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
    return key


def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid}, private=True)


def public_jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def service(app: FastAPI) -> AuthService:
    auth: AuthService = services.of_app(app).auth_service()
    return auth


async def register(
    app: FastAPI,
    *,
    scopes: str,
    keys: tuple[Key, ...] = (),
    jwks_url: str | None = None,
    secret: bool = False,
    organization: str | None = None,
    admin: bool = False,
    redirect_uris: tuple[str, ...] = (),
    public: bool = False,
) -> tuple[str, str | None]:
    """A registered client: (client_id, client_secret or None)."""
    client_secret = secrets.token_urlsafe(32) if secret else None
    method = PRIVATE_KEY_JWT if (keys or jwks_url) else CLIENT_SECRET_BASIC if secret else PUBLIC
    grants = () if public else ("client_credentials",)
    if redirect_uris:
        grants += ("authorization_code", "refresh_token")
    client = Client(
        client_id=str(uuid.uuid4()),
        name="Test client",
        auth_method=method,
        scopes=tuple(scopes.split()),
        grant_types=grants,
        redirect_uris=redirect_uris,
        secret_hash=digest(client_secret) if client_secret else None,
        jwks=public_jwks(*keys) if keys else None,
        jwks_url=jwks_url,
        organization=organization,
        is_admin=admin,
    )
    await service(app).store.add_client(client)
    return client.client_id, client_secret


async def add_user(app: FastAPI, username: str, practitioner: str, role: str = "chw") -> str:
    user = await service(app).store.add_user(username, _password_hash(), practitioner, role)
    return user.id


_HASH: list[str] = []


def _password_hash() -> str:
    if not _HASH:  # scrypt is slow on purpose: hash the shared test password once
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def assertion(
    client_id: str,
    key: Key,
    *,
    alg: str | None = None,
    aud: str = TOKEN_URL,
    iss: str | None = None,
    lifetime: int = 240,
    issued_at: float | None = None,
    not_before: float | None = None,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    issued = int(issued_at if issued_at is not None else time.time())
    claims: dict[str, Any] = {
        "iss": iss or client_id,
        "sub": client_id,
        "aud": aud,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    if not_before is not None:
        claims["nbf"] = int(not_before)
    algorithm = alg or ("RS384" if isinstance(key, RSAKey) else "ES384")
    head = {"alg": algorithm, "kid": key.kid, "typ": "JWT", **(header or {})}
    return jwt.encode(head, claims, key, algorithms=[algorithm])


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """A JWT with alg "none" (no signature), built by hand as an attacker would."""
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({**header, 'alg': 'none'})}.{part(claims)}."


async def backend_token(
    http: httpx.AsyncClient, client_id: str, key: Key, scope: str, **assertion_options: Any
) -> httpx.Response:
    return await http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, key, **assertion_options),
        },
    )


async def access_token(http: httpx.AsyncClient, client_id: str, key: Key, scope: str) -> str:
    r = await backend_token(http, client_id, key, scope)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(
    client_id: str, challenge: str, scope: str = "user/*.cruds offline_access", **extra: str
) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st-" + secrets.token_hex(4),
        "aud": FHIR_BASE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def login(
    http: httpx.AsyncClient,
    client_id: str,
    username: str,
    *,
    scope: str = "user/*.cruds offline_access",
    password: str = PASSWORD,
    verifier_challenge: tuple[str, str] | None = None,
    **extra: str,
) -> tuple[httpx.Response, str]:
    """The login page flow: GET the page, POST the form; returns (redirect response, code_verifier)."""
    verifier, challenge = verifier_challenge or pkce()
    params = authorize_params(client_id, challenge, scope, **extra)
    page = await http.get("/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    assert 'name="username"' in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    form = {k: v.replace("&amp;", "&") for k, v in form.items()}
    response = await http.post("/auth/authorize", data={**form, "username": username, "password": password})
    return response, verifier


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def exchange_code(
    http: httpx.AsyncClient, client_id: str, code: str, verifier: str, **extra: str
) -> httpx.Response:
    return await http.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            **extra,
        },
    )


async def user_tokens(http: httpx.AsyncClient, client_id: str, username: str, **options: Any) -> dict[str, Any]:
    response, verifier = await login(http, client_id, username, **options)
    code = redirect_params(response)["code"]
    tokens = await exchange_code(http, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


async def refresh(http: httpx.AsyncClient, client_id: str, refresh_token: str) -> httpx.Response:
    return await http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    )


def sign_access_token(app: FastAPI, claims: dict[str, Any], *, key: Key | None = None, kid: str | None = None) -> str:
    """An access token signed with the server's own key (or `key`), for resource-server tests."""
    keys = service(app).keys
    signing = key or keys.signing_key
    alg = keys.algorithm if key is None else ("RS256" if isinstance(key, RSAKey) else "ES384")
    header = {"alg": alg, "kid": kid or keys.signing_key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, signing, algorithms=[alg])


def token_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": f"{BASE}/auth",
        "aud": FHIR_BASE,
        "sub": "test-client",
        "client_id": "test-client",
        "scope": "system/*.cruds",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "puente_admin": True,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}
