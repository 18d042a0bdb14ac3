"""Hashing what must never be stored in clear: passwords (scrypt), and random secrets (SHA-256).

Client secrets, authorization codes and refresh tokens are 256-bit random strings, so a fast digest
is enough to make a stolen table useless; passwords are chosen by people and get a slow hash.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# scrypt with N=2**14, r=8: ~16 MiB and tens of milliseconds per check (OWASP's minimum for scrypt).
_N, _R, _P = 2**14, 8, 1


def random_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(secret: str, expected_digest: str | None) -> bool:
    return expected_digest is not None and hmac.compare_digest(digest(secret), expected_digest)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(key)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_password_hash() -> str:
    """Checked against when a username is unknown, so a failed login takes as long either way."""
    return hash_password(secrets.token_urlsafe(16))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()
