"""Puente's configuration: environment variables named as in conventions.md."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PUENTE_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./puente.db"
    base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    auth: str = "on"
    data_dir: Path = Path("./.puente")

    # Request limits: a CHW's day of work fits easily; a runaway client does not.
    max_body_bytes: int = 10 * 1024 * 1024
    max_bundle_entries: int = 1000
    default_page_size: int = 50
    max_page_size: int = 1000
    db_pool_size: int = 10

    # OAuth: token lifetimes in seconds, and signing keys supplied as a file (JWK Set or PEM) instead
    # of generated into data_dir on the first run.
    access_token_lifetime: int = 300
    user_access_token_lifetime: int = 300
    refresh_token_lifetime: int = 30 * 24 * 3600
    signing_keys_file: Path | None = None

    # Clinical rules on write (interpretation, z-scores, flags, referral drafts) and the altitude
    # used when a patient's residence Location has none (La Esperanza is below 500 m).
    clinical_hooks: bool = True
    default_altitude_m: Decimal = Decimal(0)

    @property
    def public_base_url(self) -> str:
        """Base URL of the FHIR endpoint, without a trailing slash (e.g. http://host:8000/fhir)."""
        root = self.base_url or f"http://{self.host}:{self.port}"
        root = root.rstrip("/")
        return root if root.endswith("/fhir") else f"{root}/fhir"

    @property
    def auth_enabled(self) -> bool:
        return self.auth.lower() not in {"off", "0", "false", "no"}


@lru_cache
def get_settings() -> Settings:
    return Settings()
