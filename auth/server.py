"""The OAuth 2.0 authorization server: Authlib's grants and endpoints, adapted to Puente.

Authlib is synchronous and Puente's database is async, so every Authlib call runs in a worker thread
(`anyio.to_thread`) and reaches the database by handing coroutines back to the event loop
(`anyio.from_thread.run`). Requests reach Authlib as `FormRequest`s, a plain framework-free shape the
HTTP layer builds; answers come back as (status, body, headers) for the HTTP layer to render.

What is SMART-specific lives here: private_key_jwt assertions (RS384/ES384, `aud` = token URL, at most
five minutes, `jti` used once), PKCE with S256 only, the `aud` parameter of the authorization request,
refresh-token rotation with reuse detection, and the scope rules of `auth.tokens`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import anyio.from_thread
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
)
from authlib.oauth2.rfc6749.grants import (
    RefreshTokenGrant as _RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from auth import models
from auth.client_keys import ASSERTION_ALGORITHMS, ClientKeyError, ClientKeys
from auth.hashing import digest
from auth.models import PRIVATE_KEY_JWT, PUBLIC, AccessToken, Client, RefreshToken, User
from auth.signing_keys import SigningKeys
from auth.store import AuthStore, IssuedTokens, now
from auth.tokens import AccessTokenIssuer, AccessTokenVerifier, InvalidAccessToken, Lifetimes

# Authlib logs issued tokens at DEBUG ("Issue token %r to %r"): tokens must never reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300  # SMART: exp "no more than five minutes in the future"
CLOCK_LEEWAY = 30
CLIENT_SECRET_BASIC = models.CLIENT_SECRET_BASIC
T = TypeVar("T")

Response = tuple[int, Any, list[tuple[str, str]]]


@dataclass(frozen=True)
class AuthConfig:
    """Where the server lives. `fhir_base_url` is the access tokens' audience and the `aud` of /authorize."""

    fhir_base_url: str  # e.g. https://puente.example.org/fhir
    lifetimes: Lifetimes = field(default_factory=Lifetimes)

    @property
    def root(self) -> str:
        base = self.fhir_base_url.rstrip("/")
        return base[: -len("/fhir")] if base.endswith("/fhir") else base

    @property
    def issuer(self) -> str:
        return f"{self.root}/auth"

    def url(self, endpoint: str) -> str:
        return f"{self.root}/auth/{endpoint}"

    @property
    def token_url(self) -> str:
        return self.url("token")


class _Headers:
    """Case-insensitive header look-up, as Authlib expects (`headers.get("Authorization")`)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {k.lower(): v for k, v in headers.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._headers


@dataclass(frozen=True)
class FormRequest:
    """An HTTP request as the authorization server needs it: method, public URL, headers, parameters.

    `params` holds every value of every form (or query) parameter, in order.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, list[str]]


class _Payload(OAuth2Payload):
    def __init__(self, params: Mapping[str, list[str]]) -> None:
        self._data = {k: v[0] for k, v in params.items() if v}
        self._datalist = {k: list(v) for k, v in params.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:  # type: ignore[override]
        return self._datalist


class _OAuth2Request(OAuth2Request):
    def __init__(self, request: FormRequest) -> None:
        super().__init__(request.method, request.url, headers=_Headers(request.headers))
        self.payload = _Payload(request.params)

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data  # type: ignore[no-any-return]

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data  # type: ignore[no-any-return]


class PuenteAuthorizationServer(AuthorizationServer):
    """Authlib's AuthorizationServer with Puente's store, keys, grants and endpoints."""

    def __init__(
        self,
        store: AuthStore,
        config: AuthConfig,
        keys: SigningKeys,
        client_keys: ClientKeys,
        *,
        revoked_hook: Callable[[str], None] = lambda jti: None,
    ) -> None:
        super().__init__()
        self.store = store
        self.revoked_hook = revoked_hook  # tells this process's bearer check at once
        self.config = config
        self.keys = keys
        self.client_keys = client_keys
        self.token_issuer = AccessTokenIssuer(config.issuer, config.fhir_base_url, keys, config.lifetimes)
        self.verifier = AccessTokenVerifier(config.issuer, config.fhir_base_url, keys, leeway=CLOCK_LEEWAY)
        self.register_token_generator("default", self.token_issuer)
        self.register_client_auth_method(PRIVATE_KEY_JWT, ClientAssertion(self))
        self.register_grant(BackendServicesGrant)
        self.register_grant(SmartAuthorizationCodeGrant, [SmartPkce()])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)

    # ---- Authlib's hooks ---------------------------------------------------------------------

    def wait(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run a store coroutine on the event loop from Authlib's worker thread."""
        return anyio.from_thread.run(fn, *args)

    def query_client(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
            return None
        return self.wait(self.store.get_client, client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        refresh = token.get("refresh_token")
        family: str | None = None
        if refresh:  # access tokens are self-contained JWTs: only refresh tokens are stored
            previous: RefreshToken | None = request.refresh_token
            issued = now()
            family = previous.family_id if previous else uuid.uuid4().hex
            record = RefreshToken(
                token_hash=digest(refresh),
                family_id=family,
                client_id=request.client.get_client_id(),
                user_id=request.user.get_user_id(),
                scope=token.get("scope", ""),
                patient=request.user.patient,
                issued_at=issued,
                expires_at=issued + self.config.lifetimes.refresh,
            )
            self.wait(self.store.save_refresh_token, record)
        code: models.AuthorizationCode | None = getattr(request, "authorization_code", None)
        if code is not None and code.code_hash:
            claims = self.verifier.verify(token["access_token"])
            issued_tokens = IssuedTokens(family, str(claims["jti"]), int(claims["exp"]))
            keep_until = now() + self.config.lifetimes.refresh
            if self.wait(self.store.record_issued, code.code_hash, issued_tokens, keep_until):
                self.revoke_issued(issued_tokens)  # the code was replayed while it was being exchanged

    def revoke_issued(self, issued: IssuedTokens) -> None:
        """Revoke what an authorization code issued: its code was presented twice (RFC 6749 4.1.2)."""
        if issued.token_family:
            self.wait(self.store.revoke_family, issued.token_family)
        if issued.access_jti and issued.access_expires_at:
            self.wait(self.store.revoke_access_token, issued.access_jti, issued.access_expires_at)
            self.revoked_hook(issued.access_jti)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _OAuth2Request(request)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    # ---- what the HTTP layer calls (in a worker thread) --------------------------------------

    def token(self, request: FormRequest) -> Response:
        return self._guarded(request, self.create_token_response)

    def introspect(self, request: FormRequest) -> Response:
        return self._guarded(request, lambda r: self.create_endpoint_response(Introspection.ENDPOINT_NAME, r))

    def revoke(self, request: FormRequest) -> Response:
        return self._guarded(request, lambda r: self.create_endpoint_response(Revocation.ENDPOINT_NAME, r))

    def check_authorization(self, request: FormRequest) -> Client:
        """Validate an authorization request (before showing the login page). Raises OAuth2Error."""
        grant = self.get_consent_grant(_OAuth2Request(request))
        client: Client = grant.client
        return client

    def authorize(self, request: FormRequest, user: User | None, patient: str | None = None) -> Response:
        """The redirect back to the app: with a code for `user` (and launch `patient`), or access_denied."""
        oauth_request = _OAuth2Request(request)
        oauth_request.launch_patient = patient
        try:
            grant = self.get_consent_grant(oauth_request, end_user=user)
        except OAuth2Error as error:
            return self.handle_error_response(oauth_request, error)
        response: Response = self.create_authorization_response(oauth_request, grant_user=user, grant=grant)
        return response

    def _guarded(self, request: FormRequest, call: Callable[[OAuth2Request], Response]) -> Response:
        try:
            oauth_request = _OAuth2Request(request)
        except OAuth2Error as error:  # e.g. insecure_transport: the public URL is not https
            return self.handle_response(*error())
        return call(oauth_request)

    # ---- tokens as introspection and revocation see them -------------------------------------

    def find_token(self, token: str, hint: str | None) -> AccessToken | RefreshToken | None:
        if hint != "refresh_token" and token.count(".") == 2:
            try:
                claims = self.verifier.verify(token)
            except InvalidAccessToken:
                return None
            return AccessToken(claims, revoked=self.wait(self.store.access_token_revoked, claims["jti"]))
        return self.wait(self.store.get_refresh_token, digest(token))


class ClientAssertion(JWTBearerClientAssertion):
    """private_key_jwt client authentication as SMART specifies it (client-confidential-asymmetric)."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, server: PuenteAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_LEEWAY)
        self.server = server

    def __call__(self, query_client: Callable[[str], Client | None], request: OAuth2Request) -> Client | None:
        form = request.form
        assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
        if assertion_type is None and assertion is None:
            return None  # another method may apply
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}, with a client_assertion")
        try:
            header, unverified = self.extract_assertion(assertion)
        except InvalidClientError:
            raise _invalid_client("The client assertion is not a signed JWT") from None
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or unverified.get("iss") != client_id:
            raise _invalid_client("The client assertion's 'iss' and 'sub' must both be the client_id")
        if form.get("client_id") not in (None, client_id):
            raise _invalid_client("client_id does not match the client assertion")
        client = query_client(client_id)
        if client is None:
            raise _invalid_client("Unknown client")
        if client.auth_method != PRIVATE_KEY_JWT:
            raise _invalid_client("This client does not authenticate with private_key_jwt")
        try:
            key = self.server.client_keys.key_for(client, header)
        except ClientKeyError as exc:
            raise _invalid_client(str(exc)) from None
        try:
            claims = jwt.decode(assertion, key, algorithms=[str(header["alg"])]).claims
        except JoseError:
            raise _invalid_client("The client assertion's signature does not verify") from None
        self._check_claims(client_id, claims)
        request.client = client
        return self.authenticate_client(client)  # type: ignore[no-any-return]

    def _check_claims(self, client_id: str, claims: dict[str, Any]) -> None:
        registry = JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "value": self.server.config.token_url},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except MissingClaimError as exc:
            raise _invalid_client(f"The client assertion lacks claims: {exc.description}") from None
        except JoseError as exc:
            raise _invalid_client(f"The client assertion is not valid: {exc.description}") from None
        exp = claims["exp"]
        issued = claims.get("iat")
        current = time.time()
        if exp > current + MAX_ASSERTION_LIFETIME + self.leeway or (
            isinstance(issued, int | float) and exp - issued > MAX_ASSERTION_LIFETIME
        ):
            raise _invalid_client("A client assertion may be valid for at most five minutes")
        if not self.server.wait(self.server.store.use_assertion, client_id, str(claims["jti"]), int(exp) + self.leeway):
            raise _invalid_client("This client assertion was already used (jti replay)")

    def get_audiences(self) -> list[str]:
        return [self.server.config.token_url]


def _invalid_client(description: str) -> InvalidClientError:
    # 401: the client failed to authenticate, whichever way it tried (RFC 6749 5.2 allows it).
    return InvalidClientError(description=description, status_code=401)


class BackendServicesGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC]


class SmartAuthorizationCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC, PUBLIC]
    server: PuenteAuthorizationServer

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        # SMART: `aud` names the FHIR server the app wants a token for; a token must never leak elsewhere.
        if self.request.payload.data.get("aud") != self.server.config.fhir_base_url:
            raise InvalidRequestError(
                f"'aud' must be this FHIR server's base URL, {self.server.config.fhir_base_url}",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        record = models.AuthorizationCode(
            client_id=request.client.get_client_id(),
            user_id=request.user.get_user_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            expires_at=now() + self.server.config.lifetimes.code,
            patient=getattr(request, "launch_patient", None),
            nonce=(data.get("nonce") or None) and str(data["nonce"])[:255],
        )
        self.server.wait(self.server.store.save_code, digest(code), record)

    def query_authorization_code(self, code: str, client: Client) -> models.AuthorizationCode | None:
        # Consumed on first presentation, even if the exchange then fails: a code works once, and
        # presenting it again revokes every token issued from it (someone else holds a copy).
        found, replayed = self.server.wait(self.server.store.take_code, digest(code), client.client_id)
        if replayed is not None:
            self.server.revoke_issued(replayed)
        return found

    def delete_authorization_code(self, authorization_code: models.AuthorizationCode) -> None:
        pass  # marked used by query_authorization_code, and kept to recognise a replay

    def authenticate_user(self, authorization_code: models.AuthorizationCode) -> User | None:
        user = self.server.wait(self.server.store.get_user, authorization_code.user_id)
        if user is None:
            return None
        return replace(user, patient=authorization_code.patient, nonce=authorization_code.nonce)


class SmartPkce(CodeChallenge):
    """PKCE is required of every client, and only S256 is accepted (SMART App Launch 2)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: AuthorizationCodeGrant, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class RefreshTokenGrant(_RefreshTokenGrant):
    """Refresh tokens rotate: each works once; presenting a used one revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC, PUBLIC]
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: PuenteAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        token = self.server.wait(self.server.store.get_refresh_token, digest(refresh_token))
        if token is None or token.revoked_at is not None or token.is_expired():
            return None
        if token.rotated_at is not None:
            # Used before: a copy is in someone else's hands. End every token of this login.
            self.server.wait(self.server.store.revoke_family, token.family_id)
            return None
        return token

    def authenticate_user(self, refresh_token: RefreshToken) -> User:
        user = self.server.wait(self.server.store.get_user, refresh_token.user_id)
        if user is None:
            raise InvalidGrantError("The user of this refresh token is no longer active")
        return replace(user, patient=refresh_token.patient)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        if not self.server.wait(self.server.store.rotate_refresh_token, refresh_token.token_hash):
            # Two refreshes raced with the same token: neither result can be trusted.
            self.server.wait(self.server.store.revoke_family, refresh_token.family_id)
            raise InvalidGrantError("This refresh token was used twice; sign in again")


class Introspection(IntrospectionEndpoint):
    """RFC 7662: a client may introspect its own tokens; an admin client any token."""

    CLIENT_AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC]
    server: PuenteAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def check_permission(self, token: AccessToken | RefreshToken, client: Client, request: OAuth2Request) -> bool:
        return client.is_admin or token.check_client(client)

    def introspect_token(self, token: AccessToken | RefreshToken) -> dict[str, Any]:
        if isinstance(token, AccessToken):
            claims = token.claims
            keep = ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "fhirUser", "patient")
            payload = {k: claims[k] for k in keep if k in claims}
            payload["token_type"] = "Bearer"
            if "preferred_username" in claims:
                payload["username"] = claims["preferred_username"]
            return payload
        return {
            "scope": token.scope,
            "client_id": token.client_id,
            "sub": token.user_id,
            "exp": token.expires_at,
            "iat": token.issued_at,
            "token_type": "refresh_token",
        }


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token ends its family; an access token is refused from then on."""

    CLIENT_AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC, PUBLIC]
    server: PuenteAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> AccessToken | RefreshToken | None:
        return self.server.find_token(token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | RefreshToken, request: OAuth2Request) -> None:
        if isinstance(token, AccessToken):
            self.server.wait(self.server.store.revoke_access_token, token.claims["jti"], int(token.claims["exp"]))
            self.server.revoked_hook(token.claims["jti"])
        else:
            self.server.wait(self.server.store.revoke_family, token.family_id)


__all__ = ["ASSERTION_ALGORITHMS", "AuthConfig", "FormRequest", "PuenteAuthorizationServer"]
