"""/panel/ over HTTP: the sign-in redirect (PKCE), refused callbacks, bad parameters, page sizes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from tests.programme.conftest import admin_headers


async def test_without_a_session_the_panel_starts_an_authorization_request(loaded: httpx.AsyncClient) -> None:
    r = await loaded.get("/panel/")
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/auth/authorize"
    assert query["client_id"] == "puente-panel" and query["code_challenge_method"] == "S256"
    assert query["redirect_uri"].endswith("/panel/callback") and "user/*.rs" in query["scope"]
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/panel" in cookie
    login = await loaded.get(r.headers["location"])
    assert login.status_code == 200 and "Ingresar a Puente" in login.text  # the registered client's login page


async def test_a_callback_without_the_matching_state_is_refused(loaded: httpx.AsyncClient) -> None:
    for params in ({"code": "x", "state": "y"}, {"error": "access_denied"}, {}):
        r = await loaded.get("/panel/callback", params=params)
        assert r.status_code == 400 and "No se pudo ingresar" in r.text
    r = await loaded.get(
        "/panel/callback", params={"code": "x", "state": "s"}, headers={"Cookie": "puente_panel_login=s.verifier"}
    )
    assert r.status_code == 400 and "no fue aceptado" in r.text  # an unknown code


async def test_a_forged_session_cookie_means_signing_in_again(loaded: httpx.AsyncClient) -> None:
    r = await loaded.get("/panel/lista?location=Location/s1", headers={"Cookie": "puente_panel=not-a-token"})
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/authorize?")


async def test_pages_and_their_refusals(loaded: httpx.AsyncClient, auth_app: FastAPI) -> None:
    token = admin_headers(auth_app)["Authorization"].removeprefix("Bearer ")
    jar = {"Cookie": f"puente_panel={token}"}
    for path, status in (
        ("/panel/?mes=2026-11", 200),
        ("/panel/lista?location=Location/s1&mes=2026-11", 200),
        ("/panel/indicadores?careteam=CareTeam/team-a&mes=2026-11", 200),
        ("/panel/nino/nino-anemia", 200),
        ("/panel/referencia/sr-done", 200),
        ("/panel/lista?mes=2026-11", 400),
        ("/panel/lista?location=Location/s1&careteam=CareTeam/team-a", 400),
        ("/panel/lista?location=Patient/x", 400),
        ("/panel/lista?location=Location/s1&mes=2026-13", 400),
        ("/panel/lista?location=Location/nada", 404),
        ("/panel/nino/nadie", 404),
        ("/panel/referencia/nada", 404),
    ):
        r = await loaded.get(path, headers=jar)
        assert r.status_code == status, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html") and '<html lang="es">' in r.text
        assert len(r.content) < 200_000 and "https://" not in r.text.replace("https://puente.test", "")
