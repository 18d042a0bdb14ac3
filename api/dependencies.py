"""Request-scoped dependencies: settings, the caller (Principal), and a repository in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from api import audit, services
from auth.principal import Principal
from settings import Settings
from storage.database import transaction
from storage.repository import FhirRepository

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


async def get_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    return services.of(request).settings


async def get_principal(request: Request) -> Principal:
    return await services.of(request).authenticate(request)  # no fallback: see api.services


@asynccontextmanager
async def open_repository(request: Request, principal: Principal) -> AsyncIterator[FhirRepository]:
    """The request's repository in one transaction, committed when the block ends: nothing
    acknowledged is lost, and a write's AuditEvent is committed with it. Shared by the dependency
    below and api.fhir_lane, so both paths open, audit and commit a request's work the same way."""
    write = request.method in _WRITE_METHODS and not request.scope["path"].endswith("/_search")
    shared = services.of(request)
    async with transaction(shared.engine, write=write) as connection:
        repository = FhirRepository(connection, principal, subscribers=shared.subscribers)
        yield repository
        if repository.recorded_with_create:
            audit.recorded(request)  # its create's statement stored it (api.interactions.create)
        elif write and audit.enabled(request):
            await audit.record_in_transaction(connection, request)


async def get_repository(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> AsyncIterator[FhirRepository]:
    # Committed when the handler returns and before the response is sent.
    async with open_repository(request, principal) as repository:
        yield repository


SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
RepositoryDep = Annotated[FhirRepository, Depends(get_repository, scope="function")]
