"""`puente partners add/list/update/remove/keygen`: the clinic FHIR servers Puente pushes referrals to."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from exchange import partners
from exchange.partners import DEFAULT_SCOPE, PartnerError
from exchange.tokens import KeyFileError, SigningKey, generate_key
from settings import get_settings
from storage.database import create_engine

T = TypeVar("T")
partners_app = typer.Typer(
    help="Partner clinics: FHIR servers Puente pushes referrals to (SMART Backend Services), and brings "
         "their Task updates back from.", no_args_is_help=True)
DatabaseUrl = Annotated[str | None, typer.Option(envvar="PUENTE_DATABASE_URL", help="SQLAlchemy URL")]


def register(app: typer.Typer) -> None:
    app.add_typer(partners_app, name="partners")


@partners_app.command("add")
def add(
    name: Annotated[str, typer.Option(help="Who the clinic is, e.g. 'C.S. La Esperanza'")],
    base_url: Annotated[str, typer.Option(help="The clinic's FHIR base URL (https)")],
    token_url: Annotated[str, typer.Option(help="The clinic's token endpoint (https)")],
    client_id: Annotated[str, typer.Option(help="The client id the clinic gave Puente")],
    key_file: Annotated[Path, typer.Option(help="Puente's private key for this clinic: PEM or JWK, RSA (RS384) "
                                                "or EC P-384 (ES384); `puente partners keygen` makes one")],
    organization: Annotated[str, typer.Option(help="Organization/ID: the referrals addressed to it are pushed")],
    scope: Annotated[str, typer.Option(help="Scopes asked of the clinic's token endpoint")] = DEFAULT_SCOPE,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a partner clinic; prints it and the JWK Set the clinic registers for Puente's client."""
    partner, key = _run(database_url, lambda engine: partners.add(
        engine, name=name, base_url=base_url, token_url=token_url, client_id=client_id, key_file=key_file,
        organization=organization, scope=scope))
    _warn_if_readable(Path(partner.key_file))
    _show({"partner": partner.public_view(), "jwks": key.jwks()})


@partners_app.command("list")
def list_partners(database_url: DatabaseUrl = None) -> None:
    """Print the partners as JSON: where they are, what waits for them, their latest failure (no keys)."""
    _show(_run(database_url, partners.listed))


@partners_app.command("update")
def update(
    partner: Annotated[str, typer.Argument(help="The partner's id or name")],
    base_url: Annotated[str | None, typer.Option(help="A new FHIR base URL")] = None,
    token_url: Annotated[str | None, typer.Option(help="A new token endpoint")] = None,
    client_id: Annotated[str | None, typer.Option(help="A corrected client id")] = None,
    key_file: Annotated[Path | None, typer.Option(help="Another private key file")] = None,
    scope: Annotated[str | None, typer.Option(help="Other scopes")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change how Puente reaches a partner; what waits in its outbox goes with the new settings."""
    changed, key = _run(database_url, lambda engine: partners.change(
        engine, partner, base_url=base_url, token_url=token_url, client_id=client_id,
        key_file=str(key_file) if key_file else None, scope=scope))
    _show({"partner": changed.public_view(), "jwks": key.jwks()})


@partners_app.command("remove")
def remove(
    partner: Annotated[str, typer.Argument(help="The partner's id or name")],
    database_url: DatabaseUrl = None,
) -> None:
    """Stop pushing to a partner; pushes still waiting for it are given up (counted in the output)."""
    removed, dropped = _run(database_url, lambda engine: partners.remove(engine, partner))
    _show({"removed": removed.id, "name": removed.name, "pending_given_up": dropped})


@partners_app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the new private key (PEM, mode 0600)")],
    alg: Annotated[str, typer.Option(help="ES384 (EC P-384) or RS384 (RSA 3072)")] = "ES384",
) -> None:
    """Make a private key for `partners add --key-file`; prints the JWK Set the clinic registers."""
    if alg not in ("ES384", "RS384"):
        _fail("--alg must be ES384 or RS384")
    try:
        key: SigningKey = generate_key(path, alg)
    except FileExistsError:
        _fail(f"{path} exists already: it is not overwritten")
    except (OSError, KeyFileError) as exc:
        _fail(f"cannot write {path}: {exc}")
    _show({"key_file": str(path.resolve()), "jwks": key.jwks()})


def _run(database_url: str | None, action: Callable[[Any], Awaitable[T]]) -> T:
    url = database_url or get_settings().database_url

    async def go() -> T:
        engine = create_engine(url)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except PartnerError as exc:
        _fail(str(exc))
    except DBAPIError as exc:
        _fail(f"database error ({type(exc.orig).__name__}); has `puente migrate` been run on {url}?")


def _warn_if_readable(path: Path) -> None:
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            typer.echo(f"warning: {path} can be read by others than its owner; chmod 600 it", err=True)
    except OSError:
        pass


def _show(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
