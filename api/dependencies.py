"""Request-scoped dependencies: settings, the caller (Principal), and a repository in one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from api import audit
from auth.principal import LOCAL_EXPLORER, Principal
from settings import Settings
from storage.database import transaction
from storage.repository import FhirRepository
from storage.search import find_matches

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


async def get_settings(request: Request) -> Settings:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    settings: Settings = request.app.state.settings
    return settings


async def get_principal(request: Request) -> Principal:
    authenticate = getattr(request.app.state, "authenticate", None)
    if authenticate is None:
        return LOCAL_EXPLORER
    principal: Principal = await authenticate(request)
    return principal


async def get_repository(
    request: Request, principal: Annotated[Principal, Depends(get_principal)]
) -> AsyncIterator[FhirRepository]:
    # Committed when the handler returns and before the response is sent: nothing acknowledged is
    # lost, and a write's AuditEvent is committed with it.
    write = request.method in _WRITE_METHODS and not request.scope["path"].endswith("/_search")
    async with transaction(request.app.state.engine, write=write) as connection:
        yield FhirRepository(
            connection,
            principal,
            search=find_matches,
            hooks=request.app.state.write_hooks,
            enrichers=request.app.state.enrichers,
        )
        if write and audit.enabled(request):
            await audit.record_in_transaction(connection, request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
RepositoryDep = Annotated[FhirRepository, Depends(get_repository, scope="function")]
