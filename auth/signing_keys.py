"""The authorization server's signing keys: generated on first run into the data directory, or supplied.

The key file is a JWK Set with private keys (mode 0600, never committed). The first key signs new
access tokens; every key in the file is published at /auth/jwks, so an operator rotates by putting a
new key first and dropping the old one once the tokens it signed have expired (minutes).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey, import_key

KEY_FILE_NAME = "signing-keys.json"
_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


class SigningKeyError(Exception):
    """The configured key file cannot be used."""


@dataclass(frozen=True)
class SigningKeys:
    keys: tuple[RSAKey | ECKey, ...]

    @property
    def signing_key(self) -> RSAKey | ECKey:
        return self.keys[0]

    @property
    def algorithm(self) -> str:
        return _algorithm(self.signing_key)

    @property
    def algorithms(self) -> list[str]:
        return sorted({_algorithm(k) for k in self.keys})

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [_public(k) for k in self.keys]}

    def verification_keys(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())  # type: ignore[arg-type]


def load_or_create(data_dir: Path, supplied: Path | None = None) -> SigningKeys:
    """The supplied key file if given, else `data_dir/signing-keys.json`, generated when missing."""
    if supplied is not None:
        return _read(supplied)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        _create(path)
    return _read(path)


def generate_key() -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, private=True)
    key.ensure_kid()
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = json.dumps({"keys": [generate_key().as_dict(private=True)]}, indent=2)
    # Written aside and linked into place: several workers starting at once agree on one key file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing-keys-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(document)
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _read(path: Path) -> SigningKeys:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing keys from {path}: {exc.strerror}") from None
    keys: list[Any]
    try:
        if text.lstrip().startswith("-----BEGIN"):
            keys = [_import_pem(text.encode())]
        else:
            keys = [import_key(k) for k in json.loads(text)["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not a JWK Set or PEM private key: {exc}") from None
    usable = tuple(k for k in keys if isinstance(k, RSAKey | ECKey) and k.is_private)
    if not usable or len(usable) != len(keys):
        raise SigningKeyError(f"{path} must hold only RSA or EC private keys")
    for key in usable:
        key.ensure_kid()
    return SigningKeys(usable)


def _import_pem(pem: bytes) -> RSAKey | ECKey:
    for key_type in (RSAKey, ECKey):
        try:
            return key_type.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
    raise ValueError("an RSA or EC private key in PEM form was expected")


def _algorithm(key: RSAKey | ECKey) -> str:
    alg = key.get("alg")
    if isinstance(alg, str):
        return alg
    if isinstance(key, ECKey):
        return _EC_ALGS[str(key.get("crv"))]
    return "RS256"


def _public(key: RSAKey | ECKey) -> dict[str, Any]:
    public = dict(key.as_dict(private=False))
    public.setdefault("alg", _algorithm(key))
    public.setdefault("use", "sig")
    return public
