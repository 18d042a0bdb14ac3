"""The `puente` command line."""

from __future__ import annotations

import ipaddress
import logging
import logging.config
import os
import shutil
import tempfile
from typing import Annotated

import typer
import uvicorn

from api.logs import log_config
from auth import cli as auth_cli
from cli import bulk, seed_demo
from cli.event_loop import event_loop_for
from exchange import cli as exchange_cli
from exchange import partners_cli
from settings import get_settings
from storage import cli as storage_cli
from storage.migrations import run_upgrade

app = typer.Typer(
    help="Puente: FHIR R4 interoperability API for community health worker programmes.", no_args_is_help=True
)
log = logging.getLogger("puente")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def migrate(
    database_url: Annotated[str | None, typer.Option(envvar="PUENTE_DATABASE_URL", help="SQLAlchemy URL")] = None,
) -> None:
    """Migrate the configured database to the latest schema (alembic upgrade head)."""
    url = database_url or get_settings().database_url
    run_upgrade(url)
    typer.echo(f"database at head: {url}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="PUENTE_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PUENTE_PORT")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    database_url: Annotated[str | None, typer.Option(envvar="PUENTE_DATABASE_URL")] = None,
) -> None:
    """Migrate the database to head, then serve the FHIR API on http://HOST:PORT/fhir."""
    os.environ["PUENTE_HOST"] = host
    os.environ["PUENTE_PORT"] = str(port)
    if database_url:
        os.environ["PUENTE_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    settings = get_settings()
    logging.config.dictConfig(log_config(settings.log_format))  # the same lines as the server's, from here on
    if not settings.auth_enabled:
        if not _is_loopback(host):
            typer.echo("PUENTE_AUTH=off is refused unless Puente is bound to a loopback address", err=True)
            raise typer.Exit(code=2)
        log.warning("PUENTE_AUTH=off: no authentication, for local exploration only")
    run_upgrade(settings.database_url)
    # Each worker process writes its metrics here; /metrics, answered by any worker, sums them. (One
    # worker runs in this process, which has already imported prometheus_client: it counts in memory.)
    own_metrics_dir = workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="puente-metrics-")
    if not settings.base_url and not _is_loopback(host):
        log.warning(
            "PUENTE_BASE_URL is not set: links, Location headers and token audiences will say %s, which "
            "clients cannot reach; set it to the public https address",
            settings.public_base_url,
        )
    try:
        _run_uvicorn(host, port, workers, log_format=settings.log_format, forwarded=settings.forwarded_allow_ips)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def _run_uvicorn(host: str, port: int, workers: int, *, log_format: str = "text", forwarded: str = "") -> None:
    settings = get_settings()
    _raise_open_files_limit()
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=workers,
        loop=event_loop_for(settings, workers),
        log_level="info",
        log_config=log_config(log_format),
        # No uvicorn access log: it would write search URLs (names, DNI numbers). JSON logs have
        # Puente's own access line, without query strings (api/access_log.py).
        access_log=False,
        # X-Forwarded-For / -Proto are believed from these proxies only (PUENTE_FORWARDED_ALLOW_IPS; by
        # default the loopback, as uvicorn does): then audit records name the real client address.
        proxy_headers=True,
        forwarded_allow_ips=forwarded or "127.0.0.1",
        # A worker compiles the R4 schema at start-up (seconds on a busy machine): do not take it for hung.
        timeout_worker_healthcheck=60,
        # Floods: a deadline and a size limit on each request's head (cli.http_protocol), idle
        # kept-alive connections closed after 5 s, and past PUENTE_LIMIT_CONCURRENCY connections or
        # requests in one worker, new requests answered 503 at once instead of queueing.
        http="cli.http_protocol:GuardedHttpToolsProtocol",
        timeout_keep_alive=5,
        limit_concurrency=settings.limit_concurrency or None,
    )


def _raise_open_files_limit() -> None:
    """Each connection is a file descriptor; the soft limit (often 1,024) is raised to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20), hard))
    except (ImportError, ValueError, OSError):  # not on this platform, or not allowed: keep the default
        pass


# Subcommands live with the package they serve.
auth_cli.register(app)
storage_cli.register(app)
seed_demo.register(app)
bulk.register(app)
exchange_cli.register(app)
partners_cli.register(app)
