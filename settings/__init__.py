"""Puente's configuration: environment variables named as in conventions.md."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    db_pool_timeout: float = 10.0  # seconds a request waits for a pooled connection, then 503
    # PostgreSQL with autovacuum off: how often each `serve` process analyses the tables that changed
    # enough by autovacuum's own thresholds (storage.statistics_keeper); 0: never.
    analyze_seconds: float = 60.0

    # Hostile input and floods (README "Limits"): each is refused with a 4xx OperationOutcome that
    # names it, before any database work; the defaults leave real CHW and clinic traffic far below.
    max_json_depth: int = 64
    max_array_items: int = 10_000
    max_string_chars: int = 4 * 1024 * 1024
    max_number_digits: int = 32
    max_number_exponent: int = 100
    max_search_params: int = 100
    max_search_values: int = 200
    max_chain_depth: int = 3
    max_has_depth: int = 2
    max_patch_operations: int = 100
    body_idle_timeout: float = 15.0  # seconds without a byte of the body
    body_timeout: float = 120.0  # seconds for the whole body (a 10 MiB upload over a slow 2G link)
    request_time_budget: float = 30.0  # seconds: PostgreSQL statement_timeout, SQLite progress handler, reads
    offload_bytes: int = 64 * 1024  # bodies above this are parsed and validated off the event loop
    limit_concurrency: int = 256  # connections + requests per worker before uvicorn answers 503
    connection_idle_timeout: float = 10.0  # seconds to send a request's head on a new or idle connection
    worker_memory_mb: int = 2048  # data-segment cap per `puente serve` worker (0: none)
    metrics_token: str | None = None  # a bearer token that may read /metrics besides admin clients

    # Brute force on the authorization server: per client and per address, per minute (429 with
    # Retry-After), and a per-account lockout whose delay doubles with each wrong password.
    auth_rate_per_minute: int = 60  # requests per address
    auth_client_failures_per_minute: int = 20  # failed client authentications per client
    login_failures_before_lockout: int = 5
    login_lockout_seconds: float = 30.0
    login_lockout_max_seconds: float = 3600.0

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

    # The edges toward browsers, proxies and log collectors (api/edges.py): origins allowed by CORS
    # (comma-separated, `*` for any), the proxies whose X-Forwarded-* headers are believed
    # (comma-separated addresses or networks, `*` for any; uvicorn's forwarded_allow_ips), JSON logs.
    # The referral exchange (README "Referral exchange"): delivery workers per process (0: only
    # `puente exchange work` delivers), how often an idle worker looks, the HTTP timeout of one
    # attempt, and the retry schedule (exponential from the first delay, capped, for 24 hours).
    exchange_workers: int = 1
    exchange_poll_seconds: float = 0.2
    exchange_timeout_seconds: float = 10.0
    exchange_backoff_seconds: float = 5.0
    exchange_backoff_max_seconds: float = 600.0
    exchange_retry_hours: float = 24.0
    exchange_pull_seconds: float = 30.0  # how often each partner clinic is asked for its Task updates
    # Where subscriptions may send (exchange.endpoints): origins, hosts (`*.x` for subdomains) or
    # networks allowed beyond public addresses (comma-separated); false: only those listed.
    subscription_endpoints: str = ""
    subscription_public_endpoints: bool = True

    cors_origins: str = ""
    forwarded_allow_ips: str = ""
    log_format: str = "text"
    # The server's event loop (cli.event_loop): auto picks by database; asyncio or uvloop force one.
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"

    # Bulk data ($export): where job files go (default: data_dir/exports), how long they are kept,
    # how long a worker's claim on a job lasts without a checkpoint before another process takes it
    # over, and how often an idle worker looks for a job (a kick-off in the same process wakes it).
    export_dir: Path | None = None
    export_keep_hours: float = 24.0
    export_lease_seconds: float = 30.0
    export_poll_seconds: float = 2.0
    export_page_size: int = 2000  # resources read per statement, and per checkpoint

    @property
    def export_directory(self) -> Path:
        return self.export_dir or self.data_dir / "exports"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

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
