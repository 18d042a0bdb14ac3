"""The authorization server's records, in the auth_* tables: one short transaction per call."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth.models import AuthorizationCode, Client, RefreshToken, User
from auth.tables import authorization_codes, clients, refresh_tokens, revoked_access_tokens, used_assertions, users


@dataclass(frozen=True)
class IssuedTokens:
    """What an authorization code's exchange issued: the refresh-token family and the access token."""

    token_family: str | None
    access_jti: str | None
    access_expires_at: int | None


class DuplicateError(Exception):
    pass


def now() -> int:
    return int(time.time())


class AuthStore:
    def __init__(self, engine: Callable[[], AsyncEngine]) -> None:
        # A provider, not an engine: the app's engine only exists once its lifespan has started.
        self._engine = engine

    @asynccontextmanager
    async def _begin(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        engine = self._engine()
        # write=True makes Puente's SQLite engine take the write lock up front (BEGIN IMMEDIATE).
        bound = engine.execution_options(write=True) if write else engine
        async with bound.begin() as connection:
            yield connection

    # ---- clients -----------------------------------------------------------------------------

    async def add_client(self, client: Client) -> Client:
        values = {
            "client_id": client.client_id,
            "name": client.name,
            "auth_method": client.auth_method,
            "secret_hash": client.secret_hash,
            "jwks": json.dumps(client.jwks) if client.jwks is not None else None,
            "jwks_url": client.jwks_url,
            "scopes": " ".join(client.scopes),
            "redirect_uris": " ".join(client.redirect_uris),
            "grant_types": " ".join(client.grant_types),
            "organization": client.organization,
            "is_admin": client.is_admin,
            "created_at": client.created_at or now(),
        }
        try:
            async with self._begin(write=True) as c:
                await c.execute(insert(clients).values(**values))
        except IntegrityError:
            raise DuplicateError(f"client {client.client_id} already exists") from None
        return client

    async def get_client(self, client_id: str) -> Client | None:
        async with self._begin() as c:
            row = (await c.execute(select(clients).where(clients.c.client_id == client_id))).first()
        return None if row is None else _client(row)

    async def list_clients(self) -> list[Client]:
        async with self._begin() as c:
            rows = (await c.execute(select(clients).order_by(clients.c.created_at, clients.c.client_id))).all()
        return [_client(r) for r in rows]

    async def remove_client(self, client_id: str) -> bool:
        async with self._begin(write=True) as c:
            await c.execute(delete(refresh_tokens).where(refresh_tokens.c.client_id == client_id))
            await c.execute(delete(authorization_codes).where(authorization_codes.c.client_id == client_id))
            await c.execute(delete(used_assertions).where(used_assertions.c.client_id == client_id))
            result = await c.execute(delete(clients).where(clients.c.client_id == client_id))
        return bool(result.rowcount)

    # ---- users -------------------------------------------------------------------------------

    async def add_user(self, username: str, password_hash: str, practitioner: str | None, role: str) -> User:
        user = User(str(uuid.uuid4()), username, practitioner, role, True)
        try:
            async with self._begin(write=True) as c:
                await c.execute(
                    insert(users).values(
                        id=user.id,
                        username=username,
                        password_hash=password_hash,
                        practitioner=practitioner,
                        role=role,
                        active=True,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            raise DuplicateError(f"user {username} already exists") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        async with self._begin() as c:
            row = (await c.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None or not row.active else _user(row)

    async def login_record(self, username: str) -> tuple[User, str] | None:
        """The active user of that name and their password hash."""
        async with self._begin() as c:
            row = (await c.execute(select(users).where(users.c.username == username))).first()
        return None if row is None or not row.active else (_user(row), row.password_hash)

    async def list_users(self) -> list[User]:
        async with self._begin() as c:
            rows = (await c.execute(select(users).order_by(users.c.username))).all()
        return [_user(r) for r in rows]

    async def remove_user(self, username: str) -> bool:
        async with self._begin(write=True) as c:
            row = (await c.execute(select(users.c.id).where(users.c.username == username))).first()
            if row is None:
                return False
            await c.execute(delete(refresh_tokens).where(refresh_tokens.c.user_id == row.id))
            await c.execute(delete(authorization_codes).where(authorization_codes.c.user_id == row.id))
            await c.execute(delete(users).where(users.c.id == row.id))
        return True

    # ---- authorization codes -----------------------------------------------------------------

    async def save_code(self, code_hash: str, code: AuthorizationCode) -> None:
        codes = authorization_codes
        async with self._begin(write=True) as c:
            await c.execute(delete(codes).where(func.coalesce(codes.c.keep_until, codes.c.expires_at) < now()))
            await c.execute(insert(codes).values(code_hash=code_hash, **_code_values(code)))

    async def take_code(self, code_hash: str, client_id: str) -> tuple[AuthorizationCode | None, IssuedTokens | None]:
        """Consume a code: whoever takes it first gets it, once.

        A code presented again is a replay: it gets nothing, and what was issued from it comes back
        (second of the pair) for the caller to revoke; a replay that races the first exchange is
        marked, so the tokens that exchange is about to issue are revoked as they are recorded.
        """
        codes = authorization_codes
        async with self._begin(write=True) as c:
            row = (
                await c.execute(
                    update(codes)
                    .where(codes.c.code_hash == code_hash, codes.c.used_at.is_(None))
                    .values(used_at=now())
                    .returning(*codes.c)
                )
            ).first()
            if row is None:
                replay = (
                    await c.execute(
                        update(codes)
                        .where(codes.c.code_hash == code_hash)
                        .values(replayed_at=now())
                        .returning(codes.c.token_family, codes.c.access_jti, codes.c.access_expires_at)
                    )
                ).first()
                if replay is None:
                    return None, None
                return None, IssuedTokens(replay.token_family, replay.access_jti, replay.access_expires_at)
        if row.client_id != client_id or row.expires_at <= now():
            return None, None
        code = AuthorizationCode(
            row.client_id,
            row.user_id,
            row.redirect_uri,
            row.scope,
            row.code_challenge,
            row.code_challenge_method,
            row.expires_at,
            row.patient,
            nonce=row.nonce,
            code_hash=code_hash,
        )
        return code, None

    async def record_issued(self, code_hash: str, issued: IssuedTokens, keep_until: int) -> bool:
        """Remember what a code's exchange issued (kept until `keep_until`); True if the code was
        replayed meanwhile, in which case the caller revokes it all at once."""
        codes = authorization_codes
        async with self._begin(write=True) as c:
            row = (
                await c.execute(
                    update(codes)
                    .where(codes.c.code_hash == code_hash)
                    .values(token_family=issued.token_family, access_jti=issued.access_jti,
                            access_expires_at=issued.access_expires_at, keep_until=keep_until)
                    .returning(codes.c.replayed_at)
                )
            ).first()
        return row is not None and row.replayed_at is not None

    # ---- refresh tokens ----------------------------------------------------------------------

    async def save_refresh_token(self, token: RefreshToken) -> None:
        async with self._begin(write=True) as c:
            # Expired tokens of this user are of no use any more, not even for reuse detection.
            expired = (refresh_tokens.c.user_id == token.user_id, refresh_tokens.c.expires_at < now())
            await c.execute(delete(refresh_tokens).where(*expired))
            await c.execute(insert(refresh_tokens).values(**_token_values(token)))

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        async with self._begin() as c:
            row = (await c.execute(select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))).first()
        return None if row is None else RefreshToken(**row._asdict())

    async def rotate_refresh_token(self, token_hash: str) -> bool:
        """Mark a refresh token used; False if it already was (or was revoked) meanwhile."""
        async with self._begin(write=True) as c:
            result = await c.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == token_hash,
                    refresh_tokens.c.rotated_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                )
                .values(rotated_at=now())
            )
        return bool(result.rowcount)

    async def revoke_family(self, family_id: str) -> None:
        async with self._begin(write=True) as c:
            await c.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )

    # ---- client assertions and revoked access tokens -----------------------------------------

    async def use_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record an assertion's jti; False when it was seen before (a replay)."""
        try:
            async with self._begin(write=True) as c:
                await c.execute(delete(used_assertions).where(used_assertions.c.expires_at < now()))
                await c.execute(insert(used_assertions).values(client_id=client_id, jti=jti, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    async def revoke_access_token(self, jti: str, expires_at: int) -> None:
        async with self._begin(write=True) as c:
            await c.execute(delete(revoked_access_tokens).where(revoked_access_tokens.c.expires_at < now()))
            exists = (
                await c.execute(select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.jti == jti))
            ).first()
            if exists is None:
                await c.execute(insert(revoked_access_tokens).values(jti=jti, expires_at=expires_at))

    async def access_token_revoked(self, jti: str) -> bool:
        async with self._begin() as c:
            row = (
                await c.execute(select(revoked_access_tokens.c.jti).where(revoked_access_tokens.c.jti == jti))
            ).first()
        return row is not None


def _client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        auth_method=row.auth_method,
        scopes=tuple(row.scopes.split()),
        grant_types=tuple(row.grant_types.split()),
        redirect_uris=tuple(row.redirect_uris.split()),
        secret_hash=row.secret_hash,
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_url=row.jwks_url,
        organization=row.organization,
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
    )


def _user(row: Any) -> User:
    return User(row.id, row.username, row.practitioner, row.role, bool(row.active))


def _code_values(code: AuthorizationCode) -> dict[str, Any]:
    return {
        "client_id": code.client_id,
        "user_id": code.user_id,
        "redirect_uri": code.redirect_uri,
        "scope": code.scope,
        "code_challenge": code.code_challenge,
        "code_challenge_method": code.code_challenge_method,
        "expires_at": code.expires_at,
        "patient": code.patient,
        "nonce": code.nonce,
    }


def _token_values(token: RefreshToken) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "client_id": token.client_id,
        "user_id": token.user_id,
        "scope": token.scope,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "rotated_at": token.rotated_at,
        "revoked_at": token.revoked_at,
        "patient": token.patient,
    }
