"""The authorization server's own tables, on their own MetaData (auth imports nothing of storage).

Times are integer seconds since the epoch: token lifetimes are compared as numbers, and SQLite's
naive datetimes never enter the picture. Secrets are stored only as SHA-256 digests (client secrets,
authorization codes, refresh tokens: all long random strings) or scrypt hashes (user passwords).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, PrimaryKeyConstraint, String, Table, Text

# The same naming convention as storage.tables, so Alembic names constraints the same way.
naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming_convention)

clients = Table(
    "auth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    # private_key_jwt | client_secret_basic | none (a public app: PKCE only)
    Column("auth_method", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=True),
    Column("jwks", Text, nullable=True),  # an inline JWK Set (JSON), public keys only
    Column("jwks_url", String(1024), nullable=True),
    Column("scopes", Text, nullable=False),  # space-separated, what the client may be granted
    Column("redirect_uris", Text, nullable=False, default=""),  # space-separated
    Column("grant_types", String(200), nullable=False),  # space-separated
    Column("organization", String(128), nullable=True),  # "Organization/ID" a clinic client is bound to
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "auth_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("practitioner", String(128), nullable=True),  # "Practitioner/ID"
    Column("role", String(16), nullable=False),  # chw | supervisor | admin
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
)

authorization_codes = Table(
    "auth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("redirect_uri", String(1024), nullable=True),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("patient", String(128), nullable=True),  # launch context chosen at login ("Patient/ID")
    Column("nonce", String(255), nullable=True),  # OpenID Connect: echoed in the id_token
    Column("expires_at", BigInteger, nullable=False),
    # A used code is kept (until keep_until) with the tokens issued from it: presenting it again
    # revokes them (RFC 6749 4.1.2). replayed_at marks a replay that raced the first exchange.
    Column("used_at", BigInteger, nullable=True),
    Column("replayed_at", BigInteger, nullable=True),
    Column("token_family", String(64), nullable=True),
    Column("access_jti", String(64), nullable=True),
    Column("access_expires_at", BigInteger, nullable=True),
    Column("keep_until", BigInteger, nullable=True),
    Index("ix_auth_codes_expires_at", "expires_at"),
)

refresh_tokens = Table(
    "auth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # Every refresh token descends from one login; reuse of a rotated token revokes the family.
    Column("family_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("patient", String(128), nullable=True),
    Column("issued_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("rotated_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_auth_refresh_tokens_family_id", "family_id"),
    Index("ix_auth_refresh_tokens_client_id", "client_id"),
    Index("ix_auth_refresh_tokens_user_id", "user_id"),
)

# jti of client assertions already used, kept until the assertion could no longer be valid anyway.
used_assertions = Table(
    "auth_used_assertions",
    metadata,
    Column("client_id", String(64), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("client_id", "jti"),
    Index("ix_auth_used_assertions_expires_at", "expires_at"),
)

# Access tokens revoked (RFC 7009) before they expire; checked on every authenticated request.
revoked_access_tokens = Table(
    "auth_revoked_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_auth_revoked_access_tokens_expires_at", "expires_at"),
)
