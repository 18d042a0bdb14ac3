"""Finding the public key that verifies a client's assertion (SMART client-confidential-asymmetric).

The key comes from the JWK Set registered inline, or fetched from the registered JWKS URL (cached as
its Cache-Control allows, at most an hour; fetched again when an unknown `kid` shows up, so a client
rotates keys by publishing the new one). A `jku` header must equal the registered URL. Exactly one key
may match the `kid` and the key type the algorithm needs; anything else is a failed authentication.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from auth.models import Client

# SMART: servers validate RS384 and/or ES384; both are accepted, nothing else.
ASSERTION_ALGORITHMS = ("RS384", "ES384")
_KEY_TYPES: dict[str, type[Key]] = {"RS384": RSAKey, "ES384": ECKey}
_MAX_AGE = re.compile(r"max-age=(\d+)")


class ClientKeyError(Exception):
    """No usable key: the message is safe to return to the client."""


@dataclass
class _Cached:
    keys: KeySet
    fetched_at: float
    fresh_until: float


class ClientKeys:
    def __init__(
        self,
        http: httpx.Client | None = None,
        *,
        max_cache_seconds: int = 3600,
        default_cache_seconds: int = 300,
        min_refetch_seconds: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http or httpx.Client(timeout=5.0, follow_redirects=False)
        self._max_cache = max_cache_seconds
        self._default_cache = default_cache_seconds
        self._min_refetch = min_refetch_seconds
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def key_for(self, client: Client, header: dict[str, Any]) -> Key:
        """The one registered key that may verify an assertion with this JOSE header."""
        alg, kid, jku = header.get("alg"), header.get("kid"), header.get("jku")
        if alg not in ASSERTION_ALGORITHMS:
            raise ClientKeyError(f"Client assertions must be signed with one of {', '.join(ASSERTION_ALGORITHMS)}")
        if not isinstance(kid, str) or not kid:
            raise ClientKeyError("The client assertion's header has no 'kid'")
        if jku is not None and jku != client.jwks_url:
            raise ClientKeyError("The client assertion's 'jku' is not the JWKS URL registered for this client")
        key_type = _KEY_TYPES[alg]
        if client.jwks is not None:
            found = _matching(_import(client.jwks), kid, key_type)
        elif client.jwks_url:
            found = _matching(self._fetch(client.jwks_url, refresh=False), kid, key_type)
            if not found:  # perhaps a rotated key: look again, not more often than every few seconds
                found = _matching(self._fetch(client.jwks_url, refresh=True), kid, key_type)
        else:
            raise ClientKeyError("This client has no registered public keys")
        if len(found) != 1:
            raise ClientKeyError(f"{len(found) or 'No'} registered {key_type.key_type} keys have kid '{kid}'")
        return found[0]

    def _fetch(self, url: str, *, refresh: bool) -> KeySet:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            if not refresh and now < cached.fresh_until:
                return cached.keys
            if refresh and now - cached.fetched_at < self._min_refetch:
                return cached.keys
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise ClientKeyError("The client's JWKS URL could not be fetched") from None
        if response.status_code != 200:
            raise ClientKeyError(f"The client's JWKS URL answered HTTP {response.status_code}")
        try:
            keys = _import(response.json())
        except ValueError:
            raise ClientKeyError("The client's JWKS URL did not return a JWK Set") from None
        entry = _Cached(keys, now, now + self._cache_seconds(response.headers.get("cache-control", "")))
        with self._lock:
            self._cache[url] = entry
        return keys

    def _cache_seconds(self, cache_control: str) -> int:
        # SMART: never cache longer than the client's Cache-Control says.
        directives = cache_control.lower()
        if "no-store" in directives or "no-cache" in directives:
            return 0
        m = _MAX_AGE.search(directives)
        return min(int(m.group(1)), self._max_cache) if m else self._default_cache


def _import(document: Any) -> KeySet:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set")
    keys: list[Key] = []
    for item in document["keys"]:
        try:
            keys.append(KeySet.import_key_set({"keys": [item]}).keys[0])
        except (JoseError, ValueError, TypeError, KeyError):
            continue  # a key we cannot use (an unknown kty) does not spoil the others
    return KeySet(keys)


def _matching(keys: KeySet, kid: str, key_type: type[Key]) -> list[Key]:
    return [k for k in keys if k.kid == kid and isinstance(k, key_type)]
