"""One export job: NDJSON files written type by type, resumable from its last checkpoint.

A checkpoint (after every page) records, per type, where the last page ended and how many bytes of
its file were written and flushed to disk. A job taken over after a crash truncates each file to
its recorded length and goes on from there: no line is lost or written twice.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bulk import jobs
from bulk.jobs import Job, JobStore
from bulk.reader import Position, Selection, group_members, read_page, visible_patients
from bulk.request import GROUP, PATIENT
from fhir_mappings import fhir_json
from fhir_mappings.summary import apply_elements
from storage import clock
from storage.tables import resources

log = logging.getLogger("puente.bulk")


def job_directory(root: Path, job_id: str) -> Path:
    return root / job_id


def file_name(resource_type: str) -> str:
    return f"{resource_type}.ndjson"


class ExportRunner:
    def __init__(
        self,
        store: JobStore,
        engine: AsyncEngine,
        root: Path,
        worker: str,
        *,
        page_size: int = 2000,
        keep_files: timedelta = timedelta(hours=24),
        on_page: Callable[[str, int], None] = lambda _type, _count: None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.root = root
        self.worker = worker
        self.page_size = page_size
        self.keep_files = keep_files
        self.on_page = on_page  # (type, resources in the page): `puente export`'s progress bar

    async def run(self, job: Job) -> None:
        try:
            finished = await self._export(job)
        except Exception as exc:  # the job fails with a reason; the worker lives on
            log.exception("export %s failed", job.id)
            await self.store.finish(job.id, self.worker, jobs.FAILED, error=f"the export failed ({type(exc).__name__})")
            return
        if finished is not None:
            await self.store.finish(
                job.id, self.worker, jobs.COMPLETED, progress=finished, expires_at=jobs.now() + self.keep_files
            )

    async def _export(self, job: Job) -> dict[str, Any] | None:
        """The final progress (every type done), or None if the job was taken from this worker."""
        progress = job.progress
        until = job.transaction_time
        if until is None:
            async with self.engine.connect() as connection:
                until = await clock.watermark(connection)  # every version stamped until then is committed
            if not await self.store.checkpoint(job.id, self.worker, progress, transaction_time=until):
                return None
        directory = job_directory(self.root, job.id)
        directory.mkdir(parents=True, exist_ok=True)
        patients = await self._patients(job)
        request = job.request
        for resource_type in request.types:
            state = progress.setdefault(resource_type, {"after": None, "count": 0, "bytes": 0, "done": False})
            if state["done"]:
                continue
            selection = Selection(
                resource_type,
                since=request.since_instant,
                until=until,
                filters=request.filters_for(resource_type),
                patients=patients,
            )
            if not await self._export_type(job, selection, directory / file_name(resource_type), state, progress):
                return None
        return progress

    async def _patients(self, job: Job) -> Any:
        request = job.request
        if request.level == PATIENT:
            return visible_patients(job.principal)
        if request.level == GROUP:
            async with self.engine.connect() as connection:
                group_pk = (
                    await connection.execute(
                        select(resources.c.pk).where(
                            resources.c.resource_type == "Group", resources.c.id == request.group_id
                        )
                    )
                ).scalar()
            return group_members(group_pk if group_pk is not None else -1)
        return None

    async def _export_type(
        self, job: Job, selection: Selection, path: Path, state: dict[str, Any], progress: dict[str, Any]
    ) -> bool:
        elements = job.request.elements_for(selection.resource_type)
        after = Position.from_json(state["after"])
        with _open_at(path, state["bytes"]) as out:
            while True:
                async with self.engine.connect() as connection:
                    rows = await read_page(connection, job.principal, selection, after, self.page_size)
                for row in rows:
                    out.write(_line(row.content, elements))
                self.on_page(selection.resource_type, len(rows))
                if rows:
                    after = rows[-1].position
                    out.flush()
                    os.fsync(out.fileno())
                    state.update(after=after.to_json(), count=state["count"] + len(rows), bytes=out.tell())
                state["done"] = len(rows) < self.page_size
                if not await self.store.checkpoint(job.id, self.worker, progress):
                    return False
                if state["done"]:
                    break
        if state["count"] == 0:
            _remove(path)  # no file for a type with nothing to export
        return True

    def remove_files(self, job_id: str) -> None:
        shutil.rmtree(job_directory(self.root, job_id), ignore_errors=True)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _open_at(path: Path, length: int) -> Any:
    """The file opened for appending after its first `length` bytes (what the last checkpoint saw)."""
    out = path.open("r+b" if path.exists() else "wb")
    out.truncate(length)
    out.seek(length)
    return out


def _line(content: str, elements: list[str]) -> bytes:
    if not elements:
        return content.encode() + b"\n"  # stored as served: one compact JSON line
    return fhir_json.dumps(apply_elements(fhir_json.loads_stored(content), elements)) + b"\n"
