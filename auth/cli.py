"""`puente clients ...` and `puente users ...`: registering OAuth clients and the people who sign in."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from auth.hashing import digest, hash_password, random_secret
from auth.models import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT, PUBLIC, ROLES, Client
from auth.scopes import NON_CLINICAL, parse_scope, split_scopes
from auth.store import AuthStore, DuplicateError
from fhir_mappings.ids import RELATIVE_REFERENCE
from settings import get_settings

T = TypeVar("T")
clients_app = typer.Typer(help="OAuth clients: clinic EHRs, CHW apps, integrators.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in through the login page (CHWs, supervisors, admins).",
                        no_args_is_help=True)


DatabaseUrl = Annotated[str | None, typer.Option(envvar="PUENTE_DATABASE_URL", help="SQLAlchemy URL")]


def register(app: typer.Typer) -> None:
    app.add_typer(clients_app, name="clients")
    app.add_typer(users_app, name="users")


@clients_app.command("add")
def add_client(
    name: Annotated[str, typer.Option(help="Who the client is, e.g. 'Centro de Salud Alto Trujillo EHR'")],
    scopes: Annotated[str, typer.Option(help="Space-separated SMART scopes, e.g. 'system/ServiceRequest.rs'")],
    jwks_file: Annotated[Path | None, typer.Option(help="JWK Set with the client's public keys")] = None,
    jwks_url: Annotated[str | None, typer.Option(help="https URL where the client publishes its JWK Set")] = None,
    secret: Annotated[bool, typer.Option("--secret", help="Generate a client secret (client_secret_basic)")] = False,
    public: Annotated[bool, typer.Option("--public", help="A public app (PKCE, no client secret)")] = False,
    organization: Annotated[str | None, typer.Option(help="Organization/ID a clinic client is bound to")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Sees everything (and the audit trail)")] = False,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Redirect URI for the login flow (repeatable)")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a client and print its client_id (and client_secret, shown only now) as JSON."""
    chosen = [flag for flag, on in (("--jwks-file", jwks_file), ("--jwks-url", jwks_url), ("--secret", secret),
                                    ("--public", public)) if on]
    if len(chosen) != 1:
        _fail("give exactly one of --jwks-file, --jwks-url, --secret, --public")
    _check_scopes(scopes)
    if organization is not None:
        _check_reference(organization, "Organization", "--organization")
    if admin and organization:
        _fail("an admin client sees everything: --organization makes no sense with --admin")
    redirect_uris = tuple(redirect_uri or ())
    for uri in redirect_uris:
        if not re.match(r"^(https://|http://(localhost|127\.0\.0\.1)(:\d+)?/|[a-z][a-z0-9+.-]*:/)", uri):
            _fail(f"redirect URI {uri!r} must be https, loopback http, or an app's own scheme")
    if public and not redirect_uris:
        _fail("a public client signs people in: give at least one --redirect-uri")
    jwks = _read_jwks(jwks_file) if jwks_file else None
    if jwks_url is not None and not jwks_url.startswith("https://"):
        _fail("--jwks-url must be an https URL (SMART: a TLS-protected endpoint)")
    client_secret = random_secret() if secret else None
    method = PRIVATE_KEY_JWT if (jwks or jwks_url) else CLIENT_SECRET_BASIC if secret else PUBLIC
    grant_types = [] if public else ["client_credentials"]
    if redirect_uris:
        grant_types += ["authorization_code", "refresh_token"]
    client = Client(
        client_id=str(uuid.uuid4()),
        name=name,
        auth_method=method,
        scopes=tuple(split_scopes(scopes)),
        grant_types=tuple(grant_types),
        redirect_uris=redirect_uris,
        secret_hash=digest(client_secret) if client_secret else None,
        jwks=jwks,
        jwks_url=jwks_url,
        organization=organization,
        is_admin=admin,
    )
    _run(database_url, lambda store: store.add_client(client))
    shown: dict[str, Any] = client.public_view()
    if client_secret:
        shown["client_secret"] = client_secret
    typer.echo(json.dumps(shown, indent=2))


@clients_app.command("list")
def list_clients(database_url: DatabaseUrl = None) -> None:
    """Print the registered clients as JSON (never their secrets)."""
    found = _run(database_url, lambda store: store.list_clients())
    typer.echo(json.dumps([c.public_view() for c in found], indent=2))


@clients_app.command("remove")
def remove_client(client_id: str, database_url: DatabaseUrl = None) -> None:
    """Remove a client; its refresh tokens stop working at once, its access tokens within minutes."""
    if not _run(database_url, lambda store: store.remove_client(client_id)):
        _fail(f"no client {client_id}")
    typer.echo(json.dumps({"removed": client_id}))


@users_app.command("add")
def add_user(
    username: Annotated[str, typer.Option()],
    practitioner: Annotated[str, typer.Option(help="The user's Practitioner record, Practitioner/ID")],
    role: Annotated[str, typer.Option(help="chw | supervisor | admin")] = "chw",
    password: Annotated[
        str | None, typer.Option(help="For scripts; asked for (hidden, twice) when not given")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a person who signs in through the login page, linked to their Practitioner record."""
    if role not in ROLES:
        _fail(f"--role must be one of {', '.join(ROLES)}")
    _check_reference(practitioner, "Practitioner", "--practitioner")
    if not re.match(r"^[A-Za-z0-9._@-]{1,128}$", username):
        _fail("--username: letters, digits and . _ @ - only")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        _fail("the password needs at least 10 characters")
    hashed = hash_password(password)
    user = _run(database_url, lambda store: store.add_user(username, hashed, practitioner, role))
    typer.echo(json.dumps({"id": user.id, "username": username, "practitioner": practitioner, "role": role}))


@users_app.command("list")
def list_users(database_url: DatabaseUrl = None) -> None:
    found = _run(database_url, lambda store: store.list_users())
    typer.echo(json.dumps(
        [{"id": u.id, "username": u.username, "practitioner": u.practitioner, "role": u.role} for u in found],
        indent=2,
    ))


@users_app.command("remove")
def remove_user(username: str, database_url: DatabaseUrl = None) -> None:
    """Remove a user; their refresh tokens stop working at once."""
    if not _run(database_url, lambda store: store.remove_user(username)):
        _fail(f"no user {username}")
    typer.echo(json.dumps({"removed": username}))


# ---- helpers -----------------------------------------------------------------------------------


def _run(database_url: str | None, action: Callable[[AuthStore], Awaitable[T]]) -> T:
    url = database_url or get_settings().database_url

    async def go() -> T:
        engine: AsyncEngine = create_async_engine(url)
        try:
            return await action(AuthStore(lambda: engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DuplicateError as exc:
        _fail(str(exc))
    except DBAPIError as exc:
        _fail(f"database error ({type(exc.orig).__name__}); has `puente migrate` been run on {url}?")


def _check_scopes(scopes: str) -> None:
    words = split_scopes(scopes)
    if not words:
        _fail("--scopes is empty")
    for scope in words:
        parsed = parse_scope(scope)
        if scope in NON_CLINICAL:
            continue
        if parsed is None:
            _fail(f"{scope!r} is not a SMART scope (e.g. system/ServiceRequest.rs, user/*.cruds, patient/*.read)")
        if parsed.restricted:
            _fail(f"{scope!r}: scopes narrowed by search parameters are not supported")


def _check_reference(reference: str, expected: str, option: str) -> None:
    m = RELATIVE_REFERENCE.match(reference)
    if m is None or m["type"] != expected:
        _fail(f"{option} must look like {expected}/ID")


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
        keys = document["keys"]
        KeySet.import_key_set(document)
    except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
        _fail(f"{path} is not a JWK Set: {exc}")
    for key in keys:
        if "d" in key or "p" in key:
            _fail(f"{path} holds a private key: register only the public keys")
        if not key.get("kid") or key.get("kty") not in ("RSA", "EC"):
            _fail(f"{path}: every key needs a 'kid' and kty RSA or EC (SMART)")
    return {"keys": keys}


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
