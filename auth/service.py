"""Everything auth offers the HTTP layer, assembled once per process: the authorization server, and
the check that turns a request's bearer token into a Principal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.client_keys import ClientKeys
from auth.principal import Principal
from auth.server import AuthConfig, PuenteAuthorizationServer
from auth.signing_keys import SigningKeys, load_or_create
from auth.store import AuthStore, now
from auth.tables import revoked_access_tokens
from auth.tokens import InvalidAccessToken, principal_from_claims


class MissingToken(Exception):
    """No bearer token was sent."""


class RevokedTokens:
    """Access tokens revoked before expiry, re-read every few seconds rather than on every request.

    Revocation made in this process is effective at once; in another worker within `refresh_seconds`.
    """

    def __init__(self, engine: Callable[[], AsyncEngine], refresh_seconds: float = 5.0) -> None:
        self._engine = engine
        self._refresh = refresh_seconds
        self._jtis: frozenset[str] = frozenset()
        self._loaded_at = -float("inf")
        self._lock = asyncio.Lock()

    async def contains(self, jti: str) -> bool:
        if time.monotonic() - self._loaded_at > self._refresh:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self._refresh:
                    await self._load()
        return jti in self._jtis

    def add(self, jti: str) -> None:
        self._jtis = self._jtis | {jti}

    async def _load(self) -> None:
        statement = select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.expires_at >= now())
        async with self._engine().connect() as connection:
            rows = (await connection.execute(statement)).scalars().all()
        self._jtis = frozenset(rows)
        self._loaded_at = time.monotonic()


@dataclass
class AuthService:
    config: AuthConfig
    keys: SigningKeys
    store: AuthStore
    server: PuenteAuthorizationServer
    revoked: RevokedTokens

    async def principal(self, authorization: str | None) -> Principal:
        """The caller of a request with this Authorization header; MissingToken / InvalidAccessToken."""
        if not authorization:
            raise MissingToken()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise MissingToken()
        claims = self.server.verifier.verify(token)
        if await self.revoked.contains(str(claims["jti"])):
            raise InvalidAccessToken("The access token was revoked")
        return principal_from_claims(claims)


def create_auth_service(
    engine: Callable[[], AsyncEngine],
    fhir_base_url: str,
    data_dir: Path,
    *,
    signing_keys_file: Path | None = None,
    client_keys: ClientKeys | None = None,
    config: AuthConfig | None = None,
) -> AuthService:
    """Load (or, on first run, generate) the signing keys and assemble the authorization server."""
    config = config or AuthConfig(fhir_base_url)
    keys = load_or_create(data_dir, signing_keys_file)
    store = AuthStore(engine)
    revoked = RevokedTokens(engine)
    server = PuenteAuthorizationServer(store, config, keys, client_keys or ClientKeys(), revoked_hook=revoked.add)
    return AuthService(config, keys, store, server, revoked)
