"""The exchange tests use the auth tests' app (PUENTE_AUTH=on, real keys, real tokens)."""

from tests.auth.conftest import auth_app, http, jwks_server, rsa  # noqa: F401  (fixtures)
