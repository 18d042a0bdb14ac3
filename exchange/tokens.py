"""Access tokens from a partner clinic's token endpoint: SMART Backend Services (client_credentials,
private_key_jwt), through Authlib's httpx integration.

- **Key.** Puente's private key for one clinic is a file (PEM, or a JWK in JSON): an RSA key of at
  least 2048 bits signs RS384, an EC P-384 key ES384 (the two algorithms SMART requires servers to
  accept). Its `kid` is the RFC 7638 thumbprint of the public key, so the clinic can tell keys apart
  when Puente rotates one; the public JWK Set is what the clinic registers for Puente's client.
- **Assertion.** Each token request carries a fresh signed JWT: `iss` = `sub` = the client id,
  `aud` = the token URL, `exp` five minutes ahead (SMART's limit), a new `jti` every time (Authlib's
  own `PrivateKeyJWT` keeps one `jti` in its `claims` dict once given one, and signs for an hour:
  hence the subclass below).
- **Cache.** A token is kept until shortly before its `expires_in` runs out (a tenth of its life, at
  most 30 s, before), then a new one is asked for; a 401 from the clinic's FHIR server drops it and
  the request is sent once more with a new one (revoked early, or the clinic restarted).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey

with warnings.catch_warnings():
    # Authlib 1.9 would rather have the httpx2 package; it still works on httpx, which Puente pins.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

ASSERTION_LIFETIME = 300  # seconds: SMART Backend Services allows at most five minutes
MIN_RSA_BITS = 2048
MAX_LEEWAY = 30.0  # seconds before a token's expiry that a new one is fetched


class KeyFileError(Exception):
    """The key file cannot serve as Puente's signing key at a clinic: the message says why."""


class TokenError(Exception):
    """The clinic's token endpoint gave no token; `status_code` is its HTTP status (None: no answer)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class SigningKey:
    key: Key
    alg: str  # RS384 | ES384
    kid: str
    fingerprint: tuple[str, int, int]  # path, mtime_ns, size: a replaced file is read again

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """What the clinic registers for Puente's client (SMART: a JWK Set)."""
        return {"keys": [self.public_jwk()]}


def load_key(path: str | os.PathLike[str]) -> SigningKey:
    """Puente's private key from `path`, or a KeyFileError saying what is wrong with it."""
    file = Path(path)
    try:
        stat = file.stat()
        data = file.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {str(file)!r} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"key file {str(file)!r} cannot be read ({exc.strerror or type(exc).__name__})") from None
    key = _parse(data, str(file))
    if not key.is_private:
        raise KeyFileError(f"key file {str(file)!r} holds a public key: Puente needs the private key to sign")
    if isinstance(key, RSAKey):
        bits = key.raw_value.key_size
        if bits < MIN_RSA_BITS:
            raise KeyFileError(f"key file {str(file)!r}: an RSA key of {bits} bits; at least {MIN_RSA_BITS}")
        alg = "RS384"
    else:
        curve = key.as_dict(private=False).get("crv")
        if curve != "P-384":
            raise KeyFileError(f"key file {str(file)!r}: an EC key on {curve}; ES384 needs P-384")
        alg = "ES384"
    return SigningKey(key, alg, key.thumbprint(), (str(file.resolve()), stat.st_mtime_ns, stat.st_size))


_LOADED: dict[str, SigningKey] = {}


def current_key(path: str) -> SigningKey:
    """`load_key`, read again only when the file changed (its modification time or size): a push
    costs a stat, not a PEM parse, and a replaced key is used from the next push on."""
    try:
        stat = os.stat(path)
    except OSError:
        _LOADED.pop(path, None)
        return load_key(path)  # says what is wrong
    known = _LOADED.get(path)
    if known is not None and known.fingerprint[1:] == (stat.st_mtime_ns, stat.st_size):
        return known
    key = _LOADED[path] = load_key(path)
    return key


def _parse(data: bytes, name: str) -> Key:
    text = data.strip()
    if text.startswith(b"{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise KeyFileError(f"key file {name!r} is neither a PEM key nor a JWK") from None
        kinds: dict[str, type[Key]] = {"RSA": RSAKey, "EC": ECKey}
        kind = kinds.get(str(document.get("kty")))
        if kind is None:
            raise KeyFileError(f"key file {name!r}: a JWK of type {document.get('kty')!r}; RSA or EC (P-384) only")
        try:
            return kind.import_key(document)
        except (JoseError, ValueError, TypeError) as exc:
            raise KeyFileError(f"key file {name!r} holds an unusable JWK ({exc})") from None
    for kind in (RSAKey, ECKey):
        try:
            with warnings.catch_warnings():  # a small RSA key: refused below, with a clearer message
                warnings.simplefilter("ignore")
                return kind.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
    raise KeyFileError(f"key file {name!r} is neither a PEM key nor a JWK (RSA, or EC P-384)")


def generate_key(path: str | os.PathLike[str], alg: str = "ES384") -> SigningKey:
    """A new private key written to `path` (PEM, readable by its owner only)."""
    key: ECKey | RSAKey = ECKey.generate_key("P-384") if alg == "ES384" else RSAKey.generate_key(3072)
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.as_pem(private=True))
    return load_key(file)


class SmartAssertion(PrivateKeyJWT):
    """private_key_jwt as SMART Backend Services wants it: kid in the header, exp at most 5 minutes,
    a new jti for every assertion."""

    def __init__(self, key: SigningKey) -> None:
        super().__init__(alg=key.alg)
        self.key = key

    def sign(self, auth: Any, token_endpoint: str) -> Any:
        return private_key_jwt_sign(
            self.key.key, client_id=auth.client_id, token_endpoint=token_endpoint, alg=self.key.alg,
            claims={}, header={"kid": self.key.kid, "typ": "JWT"}, expires_in=ASSERTION_LIFETIME,
        )


@dataclass(frozen=True)
class ClinicAccess:
    """What one partner's token requests depend on; a change (a fixed client id, a new key) means a new session."""

    token_url: str
    client_id: str
    scope: str
    key: SigningKey


class ClinicSession:
    """Authlib's AsyncOAuth2Client for one clinic: tokens fetched, cached and renewed as above."""

    def __init__(self, access: ClinicAccess, *, timeout: float) -> None:
        self.access = access
        self._issued_at = 0.0
        self.client = AsyncOAuth2Client(
            client_id=access.client_id,
            client_secret=access.key.key,
            token_endpoint_auth_method=SmartAssertion.name,
            scope=access.scope,
            token_endpoint=access.token_url,
            grant_type="client_credentials",
            timeout=timeout,
            follow_redirects=False,
        )
        self.client.register_client_auth_method(SmartAssertion(access.key))
        self._status: int | None = None
        self.client.register_compliance_hook("access_token_response", self._remember_status)

    def _remember_status(self, response: httpx.Response) -> httpx.Response:
        self._status = response.status_code
        return response

    @property
    def has_token(self) -> bool:
        token = self.client.token
        if not token or "access_token" not in token:
            return False
        expires_at = token.get("expires_at")
        if expires_at is None:
            return True
        lifetime = max(0.0, float(expires_at) - self._issued_at)
        return time.time() < float(expires_at) - min(MAX_LEEWAY, lifetime / 10)

    async def fetch_token(self) -> None:
        """A new access token, or TokenError (the endpoint's refusal, or no answer)."""
        self._status = None
        self.client.token = None
        issued_at = time.time()
        try:
            await self.client.fetch_token(self.access.token_url, grant_type="client_credentials",
                                          scope=self.access.scope)
        except OAuthError as exc:
            raise TokenError(f"token endpoint refused: {exc.error}"
                             + (f" ({exc.description})" if exc.description else ""), self._status) from None
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            raise TokenError(f"token endpoint answered HTTP {code} without a token", code) from None
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}", None) from None
        except (ValueError, KeyError, TypeError) as exc:  # not a token response (an HTML error page...)
            raise TokenError(f"token endpoint answered no token ({type(exc).__name__})", self._status) from None
        if not self.client.token or "access_token" not in self.client.token:
            raise TokenError("token endpoint answered no access_token", self._status)
        self._issued_at = issued_at

    def forget_token(self) -> None:
        self.client.token = None

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request with the current token (fetched first if there is none or it is about to expire)."""
        if not self.has_token:
            await self.fetch_token()
        return await self.client.request(method, url, auth=self.client.token_auth, **kwargs)

    async def aclose(self) -> None:
        await self.client.aclose()


class Sessions:
    """One ClinicSession per partner, replaced when what it depends on changes."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._by_partner: dict[str, ClinicSession] = {}

    async def for_partner(self, partner_id: str, access: ClinicAccess) -> ClinicSession:
        session = self._by_partner.get(partner_id)
        if session is not None and session.access == access:
            return session
        if session is not None:
            await session.aclose()
        session = self._by_partner[partner_id] = ClinicSession(access, timeout=self.timeout)
        return session

    async def aclose(self) -> None:
        for session in self._by_partner.values():
            await session.aclose()
        self._by_partner.clear()
