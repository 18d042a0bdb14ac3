"""Access tokens: RFC 9068 JWTs signed with the server's key, issued by the token endpoint and checked on
every request. They carry what access rules need (scopes, the user's Practitioner and role, a client's
Organization), so a request costs one signature check and no database look-up.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from auth.hashing import random_secret
from auth.models import Client, User
from auth.principal import Principal
from auth.scopes import OFFLINE_ACCESS, ONLINE_ACCESS, parse_scope, split_scopes
from auth.signing_keys import SigningKeys

ACCESS_TOKEN_TYPE = "at+jwt"
# Which scope contexts each grant may carry: systems get system/, people get user/ (and patient/).
GRANT_CONTEXTS = {
    "client_credentials": ("system",),
    "authorization_code": ("user", "patient"),
    "refresh_token": ("user", "patient"),
}
CLAIM_ORGANIZATION = "puente_organization"
CLAIM_ROLE = "puente_role"
CLAIM_ADMIN = "puente_admin"


@dataclass(frozen=True)
class Lifetimes:
    backend_access: int = 300  # client_credentials: SMART Backend Services recommends at most 5 minutes
    user_access: int = 300  # authorization code / refresh: the refresh token makes short tokens painless
    refresh: int = 30 * 24 * 3600  # CHWs work offline for days between syncs
    code: int = 60


class AccessTokenIssuer(BearerTokenGenerator):
    """Authlib's token generator, with SMART scope rules and Puente's claims."""

    def __init__(self, issuer: str, audience: str, keys: SigningKeys, lifetimes: Lifetimes) -> None:
        super().__init__(self._access_token, lambda **_: random_secret(), self._expires_in)
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.lifetimes = lifetimes

    def generate(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        contexts = GRANT_CONTEXTS.get(grant_type, ())
        if user is None or user.patient is None:
            contexts = tuple(c for c in contexts if c != "patient")  # patient/ scopes need a launch patient
        granted = [
            s for s in split_scopes(client.get_allowed_scope(scope))
            if (parsed := parse_scope(s)) is None or parsed.context in contexts
        ]
        if user is None:
            granted = [s for s in granted if parse_scope(s) is not None]
        if not any(parse_scope(s) for s in granted):
            raise InvalidScopeError(f"None of the requested scopes can be granted to this client for {grant_type}")
        # Refresh tokens only for people, and only when asked for (SMART offline_access / online_access).
        wants_refresh = OFFLINE_ACCESS in granted or ONLINE_ACCESS in granted
        include = include_refresh_token and user is not None and wants_refresh
        token: dict[str, Any] = super().generate(grant_type, client, user, " ".join(granted), expires_in, include)
        if user is not None and user.patient:
            token["patient"] = user.patient.removeprefix("Patient/")  # SMART launch context: the id
        if user is not None and "openid" in granted:
            token["id_token"] = self._id_token(client, user, fhir_user="fhirUser" in granted)
        return token

    def _id_token(self, client: Client, user: User, *, fhir_user: bool) -> str:
        """An OpenID Connect id_token for the app (SMART App Launch: `openid fhirUser`): who signed in,
        and with `fhirUser` the absolute URL of their Practitioner, which the app reads to show or fetch
        the user's own resource."""
        issued = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.id,
            "aud": client.client_id,
            "iat": issued,
            "exp": issued + self.lifetimes.user_access,
            "preferred_username": user.username,
        }
        if fhir_user and user.practitioner:
            claims["fhirUser"] = f"{self.audience.rstrip('/')}/{user.practitioner}"
        if user.nonce:  # OpenID Connect: the app checks its sign-in was not replayed
            claims["nonce"] = user.nonce
        key = self.keys.signing_key
        return jwt.encode({"alg": self.keys.algorithm, "kid": key.kid, "typ": "JWT"}, claims, key,
                          algorithms=[self.keys.algorithm])

    def _expires_in(self, client: Client, grant_type: str) -> int:
        return self.lifetimes.backend_access if grant_type == "client_credentials" else self.lifetimes.user_access

    def _access_token(self, client: Client, grant_type: str, user: User | None, scope: str) -> str:
        issued = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.id if user else client.client_id,
            "client_id": client.client_id,
            "scope": scope,
            "iat": issued,
            "exp": issued + self._expires_in(client, grant_type),
            "jti": uuid.uuid4().hex,
        }
        if user is not None:
            claims["preferred_username"] = user.username
            claims[CLAIM_ROLE] = user.role
            if user.practitioner:
                claims["fhirUser"] = user.practitioner
            if user.patient:
                claims["patient"] = user.patient.removeprefix("Patient/")
            if user.role == "admin":
                claims[CLAIM_ADMIN] = True
        else:
            if client.organization:
                claims[CLAIM_ORGANIZATION] = client.organization
            if client.is_admin:
                claims[CLAIM_ADMIN] = True
        key = self.keys.signing_key
        header = {"alg": self.keys.algorithm, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(header, claims, key, algorithms=[self.keys.algorithm])


class InvalidAccessToken(Exception):
    """Why a bearer token was refused; safe to show the client (it never contains the token)."""


class AccessTokenVerifier:
    def __init__(self, issuer: str, audience: str, keys: SigningKeys, *, leeway: int = 30) -> None:
        self.issuer = issuer
        self.audience = audience
        self._keys: KeySet = keys.verification_keys()
        self._leeway = leeway

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token we issued that is valid now; InvalidAccessToken otherwise."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            raise InvalidAccessToken("The access token is not a JWT") from None
        if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
            raise InvalidAccessToken("The token is not an access token")
        try:
            key = self._keys.get_by_kid(str(header.get("kid")))
        except (JoseError, ValueError, KeyError):
            raise InvalidAccessToken("The access token was not signed by this server") from None
        # Only the algorithm of the key that signed it: no "none", no RSA/HMAC confusion.
        algorithm = str(key.get("alg") or "")
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm]).claims
        except JoseError:
            raise InvalidAccessToken("The access token's signature does not verify") from None
        registry = JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidAccessToken("The access token expired") from None
        except MissingClaimError as exc:
            raise InvalidAccessToken(f"The access token lacks claims: {exc.description}") from None
        except JoseError as exc:
            raise InvalidAccessToken(f"The access token's claims are not valid here: {exc.description}") from None
        return dict(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    user = CLAIM_ROLE in claims
    return Principal(
        subject=str(claims["sub"]),
        client_id=str(claims["client_id"]),
        scopes=frozenset(split_scopes(claims.get("scope"))),
        organization=None if user else claims.get(CLAIM_ORGANIZATION),
        practitioner=claims.get("fhirUser") if user else None,
        role=claims.get(CLAIM_ROLE),
        is_admin=claims.get(CLAIM_ADMIN) is True,
        patient=f"Patient/{claims['patient']}" if isinstance(claims.get("patient"), str) else None,
        name=claims.get("preferred_username") or str(claims["client_id"]),
    )
