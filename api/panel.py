"""/panel/: the supervisors' dashboard, signed in through Puente's own OAuth login (code + PKCE).

The panel is an OAuth public client of this server (`puente-panel`, registered on first use with
redirect URI {root}/panel/callback and read-only user scopes). A visit without a session starts an
authorization request with a fresh PKCE verifier and state, kept in a short-lived cookie; the
callback checks the state, exchanges the code at /auth/token and keeps the access token in an
HttpOnly, SameSite=Strict cookie limited to /panel. Every page then reads through a repository
bound to that token's Principal, exactly as the API would. With PUENTE_AUTH=off (loopback only) the
panel opens without a login, like the API.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api import services
from auth.models import PUBLIC, Client
from auth.principal import LOCAL_EXPLORER, Principal
from fhir_mappings.outcomes import FhirError, Invalid
from programme import period, scope
from programme.panel import views
from programme.panel.layout import e, page
from storage.database import transaction
from storage.repository import FhirRepository

router = APIRouter(include_in_schema=False)

CLIENT_ID = "puente-panel"
SCOPES = "openid fhirUser user/*.rs"
SESSION = "puente_panel"
PENDING = "puente_panel_login"
_NO_STORE = {"Cache-Control": "no-store"}


def _root(request: Request) -> str:
    return str(services.of(request).settings.public_base_url).removesuffix("/fhir")


def _secure(request: Request) -> bool:
    return _root(request).startswith("https://")


async def _ensure_client(request: Request) -> None:
    service = services.of(request).auth_service()
    if await service.store.get_client(CLIENT_ID) is None:
        await service.store.add_client(
            Client(
                client_id=CLIENT_ID,
                name="Panel de supervisión de Puente",
                auth_method=PUBLIC,
                scopes=tuple(SCOPES.split()),
                grant_types=("authorization_code",),
                redirect_uris=(f"{_root(request)}/panel/callback",),
            )
        )


def _login_redirect(request: Request) -> Response:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": f"{_root(request)}/panel/callback",
            "scope": SCOPES,
            "state": state,
            "aud": services.of(request).settings.public_base_url,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response = RedirectResponse(f"/auth/authorize?{query}", status_code=303, headers=_NO_STORE)
    response.set_cookie(
        PENDING,
        f"{state}.{verifier}",
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/panel",
    )
    return response


async def _principal(request: Request) -> Principal | None:
    if not services.of(request).settings.auth_enabled:
        return LOCAL_EXPLORER
    token = request.cookies.get(SESSION)
    if not token:
        return None
    service = services.of(request).auth_service()
    try:
        return await service.principal(f"Bearer {token}")
    except Exception:  # expired or revoked: sign in again
        return None


@asynccontextmanager
async def _repository(request: Request, principal: Principal) -> AsyncIterator[FhirRepository]:
    async with transaction(services.of(request).engine, write=False) as connection:
        yield FhirRepository(connection, principal)


def _error_page(error: FhirError) -> HTMLResponse:
    body = f'<p>{e(error.diagnostics)}</p><p><a href="/panel/">Volver al inicio</a></p>'
    return HTMLResponse(page("No se pudo mostrar", body), status_code=error.status, headers=_NO_STORE)


def _month(value: str | None) -> tuple[str, period.Period]:
    month = value or dt.datetime.now(dt.UTC).date().strftime("%Y-%m")
    return month, period.month(month, "mes")


def _subject(location: str | None, careteam: str | None) -> scope.Subject:
    if bool(location) == bool(careteam):
        raise Invalid("Elija un sector (location) o un equipo (careteam)")
    subject = scope.parse_subject(location or careteam or "")
    if subject.resource_type not in ("Location", "CareTeam"):
        raise Invalid("Elija un sector (Location) o un equipo (CareTeam)")
    return subject


async def _render(request: Request, build: object) -> Response:
    principal = await _principal(request)
    if principal is None:
        await _ensure_client(request)
        return _login_redirect(request)
    try:
        async with _repository(request, principal) as repository:
            html = await build(repository)  # type: ignore[operator]
    except FhirError as error:
        return _error_page(error)
    return HTMLResponse(html, headers=_NO_STORE)


@router.get("/panel/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    pending = request.cookies.get(PENDING, "")
    expected_state, _, verifier = pending.partition(".")
    if error or not code or not expected_state or not secrets.compare_digest(state, expected_state):
        return _error_page(Invalid("No se pudo ingresar: vuelva a intentarlo desde el inicio del panel."))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "redirect_uri": f"{_root(request)}/panel/callback",
        "code_verifier": verifier,
    }
    # The token endpoint of this same app, in process: the panel is a client like any other.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app), base_url=_root(request)) as client:
        answer = await client.post("/auth/token", data=form)
    if answer.status_code != 200:
        return _error_page(Invalid("No se pudo ingresar: el código de acceso no fue aceptado."))
    tokens = answer.json()
    response = RedirectResponse("/panel/", status_code=303, headers=_NO_STORE)
    response.set_cookie(
        SESSION,
        tokens["access_token"],
        max_age=int(tokens.get("expires_in", 3600)),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/panel",
    )
    response.delete_cookie(PENDING, path="/panel")
    return response


@router.get("/panel/salir")
async def sign_out() -> Response:
    response = HTMLResponse(page("Sesión cerrada", '<p><a href="/panel/">Ingresar de nuevo</a></p>'), headers=_NO_STORE)
    response.delete_cookie(SESSION, path="/panel")
    return response


@router.get("/panel/")
@router.get("/panel")
async def home(request: Request, mes: Annotated[str | None, Query()] = None) -> Response:
    async def build(repository: FhirRepository) -> str:
        month, _ = _month(mes)
        return await views.home(repository, month)

    return await _render(request, build)


@router.get("/panel/lista")
async def worklist(
    request: Request, location: str | None = None, careteam: str | None = None, mes: str | None = None
) -> Response:
    async def build(repository: FhirRepository) -> str:
        month, when = _month(mes)
        return await views.worklist_page(repository, _subject(location, careteam), when, month)

    return await _render(request, build)


@router.get("/panel/indicadores")
async def indicators(
    request: Request, location: str | None = None, careteam: str | None = None, mes: str | None = None
) -> Response:
    async def build(repository: FhirRepository) -> str:
        month, when = _month(mes)
        return await views.indicators_page(repository, _subject(location, careteam), when, month)

    return await _render(request, build)


@router.get("/panel/nino/{patient_id}")
async def child(request: Request, patient_id: str) -> Response:
    async def build(repository: FhirRepository) -> str:
        return await views.child_page(repository, patient_id)

    return await _render(request, build)


@router.get("/panel/referencia/{request_id}")
async def referral(request: Request, request_id: str) -> Response:
    async def build(repository: FhirRepository) -> str:
        return await views.referral_page(repository, request_id)

    return await _render(request, build)
