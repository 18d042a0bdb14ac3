"""A clinic EHR's side of SMART Backend Services, for trying Puente by hand.

    uv run python examples/clinic_backend_token.py keygen            # clinic-key.json (private), clinic-jwks.json
    uv run python examples/clinic_backend_token.py token --client-id ID [--base http://127.0.0.1:8000]

`token` signs a client assertion (RS384: iss = sub = client id, aud = the token URL, 4 minutes, a fresh
jti), exchanges it at /auth/token for an access token, and prints the token response as JSON.
Keep clinic-key.json secret: only clinic-jwks.json is given to Puente (`puente clients add --jwks-file`).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey


def keygen(kid: str) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS384"}, private=True)
    Path("clinic-key.json").write_text(json.dumps(key.as_dict(private=True)))
    Path("clinic-jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2))
    print("wrote clinic-key.json (keep it secret) and clinic-jwks.json (give it to Puente)")


def token(client_id: str, base: str, scope: str | None) -> None:
    key = RSAKey.import_key(json.loads(Path("clinic-key.json").read_text()))
    token_url = f"{base.rstrip('/')}/auth/token"
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS384"])
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    if scope:
        form["scope"] = scope
    response = httpx.post(token_url, data=form, timeout=30)
    print(json.dumps(response.json(), indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen")
    gen.add_argument("--kid", default="clinic-key-1")
    tok = sub.add_parser("token")
    tok.add_argument("--client-id", required=True)
    tok.add_argument("--base", default="http://127.0.0.1:8000")
    tok.add_argument("--scope")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args.kid)
    else:
        token(args.client_id, args.base, args.scope)


if __name__ == "__main__":
    main()
