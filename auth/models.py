"""Registered clients, users, codes and tokens, as the plain records Authlib's grants work with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from auth.hashing import same_digest
from auth.scopes import grant_scopes, split_scopes

PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"
PUBLIC = "none"
AUTH_METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC, PUBLIC)
ROLES = ("chw", "supervisor", "admin")


@dataclass(frozen=True)
class Client(ClientMixin):
    client_id: str
    name: str
    auth_method: str
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...] = ()
    secret_hash: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    organization: str | None = None
    is_admin: bool = False
    created_at: int = 0

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Several registered URIs: the request must name one (RFC 6749 3.1.2.3).
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The registered scopes when none are asked for, else what of the request is registered."""
        requested = split_scopes(scope) or list(self.scopes)
        return " ".join(grant_scopes(requested, list(self.scopes), contexts=("patient", "user", "system")))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return same_digest(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def public_view(self) -> dict[str, Any]:
        """What `puente clients list` shows: everything but secrets."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "token_endpoint_auth_method": self.auth_method,
            "scope": " ".join(self.scopes),
            "grant_types": list(self.grant_types),
            "redirect_uris": list(self.redirect_uris),
            "jwks_url": self.jwks_url,
            "jwks_kids": [k.get("kid") for k in (self.jwks or {}).get("keys", [])] if self.jwks else None,
            "organization": self.organization,
            "admin": self.is_admin,
        }


@dataclass(frozen=True)
class User:
    id: str
    username: str
    practitioner: str | None
    role: str
    active: bool = True
    patient: str | None = None  # the launch context of this sign-in ("Patient/ID"), if any
    nonce: str | None = None  # the OpenID Connect nonce of this sign-in's authorization request

    def get_user_id(self) -> str:
        return self.id


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    client_id: str
    user_id: str
    redirect_uri: str | None
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: int
    patient: str | None = None  # launch context ("Patient/ID") chosen at login
    nonce: str | None = None  # OpenID Connect: the id_token of this code's exchange echoes it
    code_hash: str | None = None  # the stored code's digest, to record what its exchange issues

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()


@dataclass
class RefreshToken(TokenMixin):
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    scope: str
    issued_at: int
    expires_at: int
    rotated_at: int | None = None
    revoked_at: int | None = None
    patient: str | None = None

    def check_client(self, client: ClientMixin) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.rotated_at is not None


@dataclass
class AccessToken(TokenMixin):
    """A verified access token (a JWT we signed), as introspection and revocation see it."""

    claims: dict[str, Any]
    revoked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: ClientMixin) -> bool:
        return bool(self.claims.get("client_id") == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return int(self.claims["exp"]) <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked
