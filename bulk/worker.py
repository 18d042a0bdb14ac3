"""The background loop of each `serve` process: claims export jobs, runs them, removes expired files.

Idle, it looks for work every PUENTE_EXPORT_POLL_SECONDS with one cheap read (a kick-off in the same
process wakes it at once). Several processes share the jobs through the database (bulk.jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bulk.jobs import JobStore
from bulk.runner import ExportRunner
from storage.background import cancel_and_wait

log = logging.getLogger("puente.bulk")


class ExportWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        root: Path,
        *,
        lease_seconds: float = 30.0,
        poll_seconds: float = 2.0,
        keep_files: timedelta = timedelta(hours=24), page_size: int = 2000,
    ) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.store = JobStore(engine, lease_seconds=lease_seconds)
        self.runner = ExportRunner(self.store, engine, root, self.name, keep_files=keep_files, page_size=page_size)
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="puente-export-worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_pending()
            except Exception:  # a database hiccup: try again at the next tick
                log.exception("the export worker's round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def run_pending(self) -> None:
        """Run every job there is to claim, then remove the files of expired and cancelled jobs."""
        while await self.store.claimable():
            job = await self.store.claim(self.name)
            if job is None:
                break
            await self.runner.run(job)
        for job_id in await self.store.expired():
            self.runner.remove_files(job_id)
            await self.store.remove(job_id)
