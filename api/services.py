"""What the app's handlers share, built once by `api.app.create_app`: one typed object, not a bag of
attributes on `app.state`.

Authentication fails closed by construction: `authenticate` has no default, so an app cannot be
built without saying how callers are identified. With PUENTE_AUTH=off that is `local_explorer`,
chosen explicitly from the settings; nothing falls back to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import LOCAL_EXPLORER, Principal
from rules.config import ClinicalConfig
from settings import Settings
from storage.write_events import WriteSubscribers

if TYPE_CHECKING:  # imported for their types only: both modules read the services themselves
    from api.audit import AuditWriter
    from auth.rate_limits import AuthThrottle
    from auth.server import AuthConfig
    from auth.service import AuthService
    from bulk.worker import ExportWorker
    from exchange.delivery import Workers

Authenticate = Callable[[Request], Awaitable[Principal]]


async def local_explorer(_request: Request) -> Principal:
    """PUENTE_AUTH=off (local exploration on loopback): every request acts as the local admin."""
    return LOCAL_EXPLORER


@dataclass
class AuthParts:
    """The authorization server's parts; the service itself is made at start-up (signing keys)."""

    config: AuthConfig
    throttle: AuthThrottle
    security_capability: dict[str, Any]
    service: AuthService | None = None


@dataclass
class Services:
    settings: Settings
    authenticate: Authenticate
    subscribers: WriteSubscribers  # who hears about every write, in its transaction (wiring)
    clinical: ClinicalConfig
    operations: tuple[dict[str, Any], ...]  # the $operations, for the CapabilityStatement
    auth: AuthParts | None = None  # None with PUENTE_AUTH=off
    audit: AuditWriter | None = None  # started with the app when auth is on
    export_worker: ExportWorker | None = None  # this process's share of the $export jobs, started with the app
    exchange: Workers | None = None  # the outbox's delivery workers, started with the app
    engine_or_none: AsyncEngine | None = None  # opened by the app's lifespan
    capability_statement: Any = None  # built on first request (api.interactions.capabilities)
    routes_openapi: dict[str, Any] | None = None  # FastAPI's census of the routes, built once

    @property
    def engine(self) -> AsyncEngine:
        if self.engine_or_none is None:
            raise RuntimeError("The app has not started: its database engine opens in the lifespan")
        return self.engine_or_none

    def auth_service(self) -> AuthService:
        if self.auth is None or self.auth.service is None:
            raise RuntimeError("The authorization server is not running (PUENTE_AUTH=off, or not started)")
        return self.auth.service

    def auth_parts(self) -> AuthParts:
        if self.auth is None:
            raise RuntimeError("The authorization server is not configured (PUENTE_AUTH=off)")
        return self.auth


def of_app(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def of(request: Request) -> Services:
    return of_app(request.app)
