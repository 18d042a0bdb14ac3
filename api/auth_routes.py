"""The OAuth 2.0 / SMART endpoints under /auth, the SMART configuration, and the bearer-token check.

`parts(settings)` builds the authorization server's parts (when PUENTE_AUTH is on), `install(app)`
serves them, `start(services)` loads or generates the signing keys when the app starts. Authlib does
the OAuth work in a worker thread (see auth.server); this module only turns HTTP requests into
`FormRequest`s and answers back into HTTP responses.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from pathlib import Path
from typing import Any

import anyio.to_thread
from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from api import login_text as text
from api import services
from api.services import AuthParts, Services
from auth.client_keys import ASSERTION_ALGORITHMS
from auth.hashing import check_password, dummy_password_hash
from auth.models import Client, User
from auth.principal import Principal
from auth.rate_limits import AuthThrottle
from auth.scopes import split_scopes
from auth.server import AuthConfig, FormRequest
from auth.service import AuthService, MissingToken, create_auth_service
from auth.tokens import InvalidAccessToken, Lifetimes
from fhir_mappings.code_systems import RESTFUL_SECURITY_SERVICE
from fhir_mappings.outcomes import TooManyRequests, Unauthorized
from settings import Settings
from storage.database import transaction
from storage.repository import FhirRepository

log = logging.getLogger("puente.auth")
router = APIRouter(tags=["authorization"])
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_LOGIN_FIELDS = ("username", "password", "deny", "login")


def parts(settings: Settings) -> AuthParts | None:
    if not settings.auth_enabled:
        return None
    config = auth_config(settings)
    throttle = AuthThrottle(
        per_address_per_minute=settings.auth_rate_per_minute,
        client_failures_per_minute=settings.auth_client_failures_per_minute,
        failures_before_lockout=settings.login_failures_before_lockout,
        lockout_seconds=settings.login_lockout_seconds,
        lockout_max_seconds=settings.login_lockout_max_seconds,
    )
    return AuthParts(config, throttle, security_capability(config))


def install(app: FastAPI) -> None:
    """Serve /auth and the SMART configuration, when the authorization server is configured.

    Include before the FHIR routers: `/fhir/.well-known/...` must not be read as a resource type.
    """
    if services.of_app(app).auth is not None:
        app.include_router(router)


def start(shared: Services) -> None:
    """At startup: signing keys loaded, or generated into PUENTE_DATA_DIR on the first run."""
    if shared.auth is None:
        return
    supplied = shared.settings.signing_keys_file
    shared.auth.service = create_auth_service(
        lambda: shared.engine,
        shared.settings.public_base_url,
        shared.settings.data_dir,
        signing_keys_file=Path(supplied) if supplied else None,
        config=shared.auth.config,
    )


def auth_config(settings: Settings) -> AuthConfig:
    lifetimes = Lifetimes(
        backend_access=settings.access_token_lifetime,
        user_access=settings.user_access_token_lifetime,
        refresh=settings.refresh_token_lifetime,
    )
    return AuthConfig(settings.public_base_url, lifetimes)


async def authenticate(request: Request) -> Principal:
    """The caller of a FHIR request, from its bearer token (Services.authenticate with PUENTE_AUTH on)."""
    service = services.of(request).auth_service()
    try:
        principal = await service.principal(request.headers.get("authorization"))
    except MissingToken:
        raise Unauthorized(
            "This server needs an access token: send 'Authorization: Bearer <token>' "
            "(see /fhir/.well-known/smart-configuration)",
            headers={"WWW-Authenticate": 'Bearer realm="puente"'},
        ) from None
    except InvalidAccessToken as exc:
        reason = str(exc).replace('"', "'")
        raise Unauthorized(
            str(exc),
            headers={"WWW-Authenticate": f'Bearer realm="puente", error="invalid_token", error_description="{reason}"'},
        ) from None
    request.state.principal = principal  # for the audit record
    return principal


def security_capability(config: AuthConfig) -> dict[str, Any]:
    """CapabilityStatement.rest.security: SMART-on-FHIR, with the oauth-uris extension."""
    return {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "token", "valueUri": config.url("token")},
                    {"url": "authorize", "valueUri": config.url("authorize")},
                    {"url": "introspect", "valueUri": config.url("introspect")},
                    {"url": "revoke", "valueUri": config.url("revoke")},
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": RESTFUL_SECURITY_SERVICE,
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 with SMART on FHIR: Backend Services and standalone App Launch",
            }
        ],
        "description": "Send an access token from the token endpoint as 'Authorization: Bearer ...'. "
        "See /fhir/.well-known/smart-configuration.",
    }


@router.get(
    "/fhir/.well-known/smart-configuration",
    operation_id="smart_configuration",
    summary="SMART on FHIR configuration: endpoints, scopes, client authentication methods",
)
async def smart_configuration(request: Request) -> JSONResponse:
    config = services.of(request).auth_parts().config
    return JSONResponse(
        {
            "issuer": config.issuer,
            "jwks_uri": config.url("jwks"),
            "authorization_endpoint": config.url("authorize"),
            "token_endpoint": config.url("token"),
            "introspection_endpoint": config.url("introspect"),
            "revocation_endpoint": config.url("revoke"),
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": [
                "system/*.cruds", "system/*.rs", "user/*.cruds", "user/*.rs", "patient/*.rs", "launch/patient",
                "offline_access", "online_access", "openid", "fhirUser",
            ],
            "capabilities": [
                "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
                "client-confidential-asymmetric", "context-standalone-patient", "permission-offline",
                "permission-online", "permission-patient", "permission-user", "permission-v1", "permission-v2",
                "sso-openid-connect",
            ],
        }
    )


@router.get(
    "/auth/.well-known/openid-configuration",
    operation_id="openid_configuration",
    summary="OpenID Connect discovery for the id_token that `openid fhirUser` brings",
)
async def openid_configuration(request: Request) -> JSONResponse:
    config = services.of(request).auth_parts().config
    service = services.of(request).auth_service()
    return JSONResponse(
        {
            "issuer": config.issuer,
            "authorization_endpoint": config.url("authorize"),
            "token_endpoint": config.url("token"),
            "jwks_uri": config.url("jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [service.keys.algorithm],
            "scopes_supported": ["openid", "fhirUser"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "preferred_username", "fhirUser"],
            "code_challenge_methods_supported": ["S256"],
        }
    )


@router.get("/auth/jwks", operation_id="auth_jwks", summary="The public keys that verify access tokens")
async def jwks(request: Request) -> JSONResponse:
    service = services.of(request).auth_service()
    return JSONResponse(service.keys.public_jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.post("/auth/token", operation_id="auth_token", summary="OAuth 2.0 token endpoint (RFC 6749, SMART)")
async def token(request: Request) -> Response:
    return await _oauth_endpoint(request, "token")


@router.post("/auth/introspect", operation_id="auth_introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request) -> Response:
    return await _oauth_endpoint(request, "introspect")


@router.post("/auth/revoke", operation_id="auth_revoke", summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    return await _oauth_endpoint(request, "revoke")


async def _oauth_endpoint(request: Request, endpoint: str) -> Response:
    """token / introspect / revoke: Authlib's synchronous endpoint, run off the event loop."""
    service = services.of(request).auth_service()
    throttle = services.of(request).auth_parts().throttle
    _throttle_address(request, endpoint)
    form = await _form_request(request, endpoint)
    client_id = _claimed_client(form)
    request.state.audit_client = client_id
    if client_id and (wait := throttle.client_wait(client_id)):
        raise _throttled(f"Too many failed authentications for client {client_id[:64]!r}", wait)
    handle = getattr(service.server, endpoint)
    status, body, headers = await anyio.to_thread.run_sync(handle, form)
    if (client_id and status == 401) or (isinstance(body, dict) and body.get("error") == "invalid_client"):
        throttle.client_failed(client_id or "")
    return _oauth_response(status, body, headers)


def _throttle_address(request: Request, endpoint: str) -> None:
    throttle = services.of(request).auth_parts().throttle
    address = request.client.host if request.client else "unknown"
    if wait := throttle.address_wait(endpoint, address):
        raise _throttled(f"Too many requests to /auth/{endpoint} from this address", wait)


def _throttled(message: str, wait: float) -> TooManyRequests:
    """429 with Retry-After; the audit record of the request notes it (outcome 4, HTTP 429)."""
    seconds = str(math.ceil(wait))
    return TooManyRequests(f"{message}; retry after {seconds} s", headers={"Retry-After": seconds})


@router.get("/auth/authorize", operation_id="auth_authorize", summary="Authorization endpoint: the login page")
async def authorize_page(request: Request) -> Response:
    return await _authorize(request, await _form_request(request, "authorize"))


@router.post(
    "/auth/authorize", operation_id="auth_authorize_post", summary="Authorization endpoint: log in and consent"
)
async def authorize_submit(request: Request) -> Response:
    _throttle_address(request, "authorize")
    form = await _form_request(request, "authorize")
    if "username" not in form.params and "deny" not in form.params:
        return await _authorize(request, form)  # SMART authorize-post: the app POSTed the request itself
    service = services.of(request).auth_service()
    oauth = _without_login_fields(form)
    try:
        client = await anyio.to_thread.run_sync(service.server.check_authorization, oauth)
    except OAuth2Error as error:
        return _authorization_error(error)
    if "deny" in form.params:
        return _oauth_response(*await anyio.to_thread.run_sync(service.server.authorize, oauth, None))
    username = _first(form, "username")
    throttle = services.of(request).auth_parts().throttle
    request.state.audit_user = username
    if wait := throttle.account_wait(username):
        # The password is not checked while the account is locked: guessing gains nothing.
        return _locked_page(oauth, client, wait)
    user = await _login(service, username, _first(form, "password"))
    if user is None:
        if wait := throttle.login_failed(username):
            return _locked_page(oauth, client, wait)
        return _login_page(oauth, client, error=text.WRONG_LOGIN, status=401)
    throttle.login_succeeded(username)
    request.state.audit_user = user.username
    launch_patient = None
    if "launch/patient" in split_scopes(_first(oauth, "scope")):
        launch_patient = await _launch_patient(request, user, _first(form, "patient"))
        if launch_patient is None:
            return _login_page(oauth, client, error=text.CHOOSE_PATIENT, status=400, ask_patient=True)
    answer = await anyio.to_thread.run_sync(service.server.authorize, oauth, user, launch_patient)
    return _oauth_response(*answer)


async def _authorize(request: Request, form: FormRequest) -> Response:
    service = services.of(request).auth_service()
    try:
        client = await anyio.to_thread.run_sync(service.server.check_authorization, form)
    except OAuth2Error as error:
        return _authorization_error(error)
    ask_patient = "launch/patient" in split_scopes(_first(form, "scope"))
    return _login_page(form, client, ask_patient=ask_patient)


async def _login(service: AuthService, username: str, password: str) -> User | None:
    record = await service.store.login_record(username) if username else None
    stored = record[1] if record else dummy_password_hash()
    # scrypt takes tens of milliseconds: off the event loop, and just as long for unknown users.
    valid = await anyio.to_thread.run_sync(check_password, password, stored)
    return record[0] if record and valid else None


async def _launch_patient(request: Request, user: User, patient_id: str) -> str | None:
    """The patient a standalone launch is for, if this user may see them (else None)."""
    if not patient_id or "/" in patient_id or len(patient_id) > 64:
        return None
    principal = Principal(
        subject=user.id,
        practitioner=user.practitioner,
        role=user.role,
        is_admin=user.role == "admin",
        scopes=frozenset({"user/Patient.r"}),
    )
    async with transaction(services.of(request).engine, write=False) as connection:
        repository = FhirRepository(connection, principal)
        return f"Patient/{patient_id}" if await repository.exists("Patient", patient_id) else None


async def _form_request(request: Request, endpoint: str) -> FormRequest:
    config = services.of(request).auth_parts().config
    params: dict[str, list[str]] = {}
    if request.method == "POST":
        form = await request.form()
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    else:
        items = list(request.query_params.multi_items())
    for key, value in items:
        params.setdefault(key, []).append(value)
    # Authlib sees the public URL (PUENTE_BASE_URL), which is what clients sign assertions for.
    return FormRequest(request.method, config.url(endpoint), dict(request.headers), params)


def _without_login_fields(form: FormRequest) -> FormRequest:
    params = {k: v for k, v in form.params.items() if k not in (*_LOGIN_FIELDS, "patient")}
    return FormRequest(form.method, form.url, form.headers, params)


def _first(form: FormRequest, name: str) -> str:
    values = form.params.get(name) or [""]
    return values[0]


def _claimed_client(form: FormRequest) -> str | None:
    """Who the request says it is (for the audit record; authentication is Authlib's job)."""
    if client_id := _first(form, "client_id"):
        return client_id
    assertion = _first(form, "client_assertion")
    if assertion.count(".") == 2:
        try:
            claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
            return str(claims.get("sub"))[:64] if isinstance(claims, dict) else None
        except ValueError:
            return None
    authorization = form.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            return base64.b64decode(authorization[6:]).decode().split(":", 1)[0][:64]
        except ValueError:
            return None
    return None


def _oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    header_map = dict(headers)
    if status in (301, 302, 303, 307) and "Location" in header_map:
        return RedirectResponse(header_map["Location"], status_code=302, headers=_NO_STORE)
    header_map.pop("Content-Type", None)
    content = body if isinstance(body, dict) else json.loads(body or "{}")
    return JSONResponse(content, status_code=status, headers={**header_map, **_NO_STORE})


def _authorization_error(error: OAuth2Error) -> Response:
    if error.redirect_uri:  # a validated redirect URI: tell the app (RFC 6749 4.1.2.1)
        status, body, headers = error()
        return _oauth_response(status, body, headers)
    # An unknown client or an unregistered redirect URI: never redirect, tell the person.
    message = html.escape(f"{error.error}: {error.description or ''}")
    body = f'<p>{text.FAILED_WHY}</p><p><small lang="en">{message}</small></p>'
    return HTMLResponse(_page(text.FAILED, body), status_code=400, headers=_PAGE_HEADERS)


_PAGE_HEADERS = {
    **_NO_STORE,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _locked_page(form: FormRequest, client: Client, wait: float) -> HTMLResponse:
    seconds = math.ceil(wait)
    page = _login_page(
        form, client, status=429, error=text.LOCKED.format(seconds=seconds)
    )
    page.headers["Retry-After"] = str(seconds)
    return page


def _login_page(
    form: FormRequest, client: Client, *, error: str | None = None, status: int = 200, ask_patient: bool = False
) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, values in form.params.items()
        if k not in (*_LOGIN_FIELDS, "patient")
        for v in values
    )
    scopes = "".join(
        f'<li title="{html.escape(s)}">{html.escape(text.describe_scope(s))}</li>'
        for s in split_scopes(_first(form, "scope"))
    )
    patient = (
        f'<label>{text.PATIENT} <input name="patient" autocomplete="off" required></label>' if ask_patient else ""
    )
    body = f"""
<p><strong>{html.escape(client.name)}</strong> {text.ASKS}</p>
<ul>{scopes or f"<li>{text.REGISTERED}</li>"}</ul>
{f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""}
<form method="post" action="authorize">
{hidden}
<label>{text.USERNAME} <input name="username" autocomplete="username" required autofocus></label>
<label>{text.PASSWORD} <input name="password" type="password" autocomplete="current-password" required></label>
{patient}
<button type="submit" name="login" value="1">{text.ALLOW}</button>
</form>
<form method="post" action="authorize">{hidden}<button type="submit" name="deny" value="1">{text.CANCEL}</button></form>
"""
    return HTMLResponse(_page(text.TITLE, body), status_code=status, headers=_PAGE_HEADERS)


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0}}input{{display:block;width:100%;padding:.5rem;font-size:1rem}}
button{{padding:.6rem 1.2rem;font-size:1rem;margin-top:.5rem}}.error{{color:#a00}}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>"""
