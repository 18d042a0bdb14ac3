"""The FastAPI application: FHIR routes under /fhir, health checks, errors as OperationOutcomes."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api import (
    audit,
    auth_routes,
    docs,
    edges,
    errors,
    fhir_lane,
    health,
    limits,
    metrics,
    openapi_spec,
    panel,
    paths,
    programme,
    services,
)
from api.interactions import (
    batch,
    capabilities,
    clinical,
    create,
    delete,
    history,
    patch,
    read,
    search,
    update,
    validate,
)
from api.operations import bulk_export, everything, subscription_status
from bulk.worker import ExportWorker
from exchange.delivery import Workers
from fhir_mappings.search import QueryLimits
from fhir_mappings.search import configure_limits as configure_search_limits
from fhir_mappings.validation import warm_up
from rules.config import ClinicalConfig
from settings import Settings, get_settings
from storage import search_rows, statistics
from storage.database import create_engine, open_read_pool
from storage.statistics_keeper import StatisticsKeeper
from wiring import write_subscribers

log = logging.getLogger("puente")
VERSION = "0.1.0"


def export_worker(settings: Settings, engine: AsyncEngine) -> ExportWorker:
    """This process's share of the $export jobs (bulk.worker), with the settings' directory and times."""
    return ExportWorker(
        engine,
        settings.export_directory,
        lease_seconds=settings.export_lease_seconds,
        poll_seconds=settings.export_poll_seconds,
        keep_files=timedelta(hours=settings.export_keep_hours),
        page_size=settings.export_page_size,
    )

def _freeze_startup_objects() -> None:
    """Move what start-up built (the FHIR models, the compiled schema, the search registry: some
    140,000 objects that live as long as the process) out of the garbage collector's reach, which
    walked them in every older-generation collection. With 16 household visits in flight, the
    collector's share went from 2.0 to 0.9 ms a visit."""
    gc.collect()
    gc.freeze()


def _loop_name() -> str:
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shared.engine_or_none = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout,
            time_budget=settings.request_time_budget,
        )
        await statistics.warn_if_statistics_may_go_stale(shared.engine)
        keeper = await StatisticsKeeper.started_if_needed(shared.engine, every_seconds=settings.analyze_seconds)
        await open_read_pool(shared.engine)
        warm_up()
        auth_routes.start(shared)  # signing keys: loaded, or generated on the first run
        await audit.start(shared)
        shared.export_worker = export_worker(settings, shared.engine)
        shared.export_worker.start()
        shared.exchange = Workers(shared.engine, settings)  # deliver the outbox (exchange.delivery)
        shared.exchange.start()
        _freeze_startup_objects()
        log.info("event loop: %s", _loop_name())  # PUENTE_EVENT_LOOP (cli.event_loop) chose it
        try:
            yield
        finally:
            gc.unfreeze()  # an app started again in the same process (the tests) starts from scratch
            if shared.export_worker is not None:
                await shared.export_worker.stop()
                shared.export_worker = None
            await shared.exchange.stop()
            await audit.stop(shared)
            if keeper is not None:
                await keeper.stop()
            await shared.engine.dispose()
            shared.engine_or_none = None

    app = FastAPI(
        title="Puente",
        version=VERSION,
        description="FHIR R4 (4.0.1) interoperability API for community health worker programmes.",
        lifespan=lifespan,
        redirect_slashes=False,  # api.paths.TrailingSlash serves them in place instead
        openapi_url=None,  # served by api.docs: cached, and the UIs' assets from a package, not a CDN
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry off: Puente's metrics are its own (/metrics), spans would carry
        # search URLs (names, DNI numbers), and asking for the providers was ~1.5 % of a read by id.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    shared = services.Services(
        settings=settings,
        # Fails closed: with auth on every FHIR request needs a valid token; off is a setting, never a fallback.
        authenticate=auth_routes.authenticate if settings.auth_enabled else services.local_explorer,
        subscribers=write_subscribers(settings),  # the rules (and later the exchange) hear every write
        clinical=ClinicalConfig.from_settings(settings),
        operations=(*clinical.OPERATIONS, *bulk_export.OPERATIONS, *everything.OPERATIONS, *programme.OPERATIONS,
                    *subscription_status.OPERATIONS),
        auth=auth_routes.parts(settings),
    )
    app.state.services = shared
    search_rows.configure(base_url=settings.public_base_url)  # our own absolute URLs index as local references
    errors.install(app)
    app.include_router(health.router)
    auth_routes.install(app)  # before the FHIR routes: /fhir/.well-known is not a resource type
    app.include_router(metrics.router)
    configure_search_limits(QueryLimits(settings.max_search_params, settings.max_search_values,
                                        settings.max_chain_depth, settings.max_has_depth))
    # Middleware, innermost first: each one added wraps everything added before it.
    app.add_middleware(limits.RequestGuard, settings=settings)  # the body in memory before any handler runs
    audit.install(app, settings)  # outside the guard: its refusals (408, 413...) are interactions too
    # Request ids, security headers, CORS, HEAD, gzip both ways: outside the guard, so that a preflight
    # never reaches it and an upload is inflated before its size is judged.
    edges.install(app, settings)
    app.add_middleware(metrics.MetricsMiddleware)  # counts every answer, errors included
    app.add_middleware(paths.TrailingSlash)  # outermost: every layer sees the path without its slash
    # Fixed paths first: /metadata, /$operations and /_history must not be taken for a resource type.
    routers = (capabilities, bulk_export, everything, subscription_status, clinical, programme, validate, batch,
               history, search, read, create, update, patch, delete)
    for module in routers:
        app.include_router(module.router, prefix="/fhir")
    app.include_router(panel.router)  # /panel/: the supervisors' dashboard (HTML, not in the OpenAPI document)
    openapi_spec.install(app, settings)  # per-type paths, R4 schemas, security schemes; built once
    docs.install(app)  # /openapi.json, /docs, /redoc, offline
    fhir_lane.install(app)  # last: it reads the routes' final order
    return app
