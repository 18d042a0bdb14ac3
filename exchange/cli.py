"""`puente exchange work`: delivery workers without an HTTP server (any number, beside `serve`'s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging.config
from typing import Annotated

import typer

from exchange.delivery import Workers
from settings import Settings, get_settings
from storage import search_rows
from storage.database import create_engine
from storage.migrations import run_upgrade

exchange_app = typer.Typer(help="The referral exchange: deliver subscription notifications.", no_args_is_help=True)


@exchange_app.command("work")
def work(
    workers: Annotated[int, typer.Option(help="delivery workers in this process")] = 2,
    database_url: Annotated[str | None, typer.Option(envvar="PUENTE_DATABASE_URL")] = None,
) -> None:
    """Deliver the outbox until interrupted; shares the work with every other worker through the database."""
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    settings = settings.model_copy(update={"exchange_workers": workers})
    logging.basicConfig(level=logging.INFO)
    run_upgrade(settings.database_url)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    search_rows.configure(base_url=settings.public_base_url)  # topic notifications' fullUrls, as `serve` gives them
    engine = create_engine(settings.database_url, pool_size=settings.exchange_workers + 2)  # and the heartbeats
    running = Workers(engine, settings)
    running.start()
    typer.echo(f"exchange: {len(running.workers)} delivery workers on {settings.database_url.split('://')[0]}")
    try:
        await asyncio.gather(*running.tasks)
    finally:
        await running.stop()
        await engine.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(exchange_app, name="exchange")
