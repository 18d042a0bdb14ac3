"""Export jobs in the database: created at kick-off, claimed by a worker under a lease, checkpointed,
finished, cancelled and expired. Every `serve` process shares the one table.

A claim is one atomic statement: on PostgreSQL `FOR UPDATE SKIP LOCKED` picks a job no other
process is claiming; SQLite runs one writer at a time, so its UPDATE is atomic as it is. A worker
renews its lease at every checkpoint; a job whose lease ran out (its worker was killed) is claimed
again and resumes from the last checkpoint. A job claimed MAX_ATTEMPTS times fails instead of
killing worker after worker.

A job kicked off at the console (`puente export`) is the console's own: it writes to the console's
directory and moves the files where the operator asked, so no server's worker claims it, even once
a killed run's lease has run out; the next run of the same command takes it over (claim_job).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from bulk.request import ExportRequest
from bulk.tables import export_jobs

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "queued", "running", "completed", "failed", "cancelled"
MAX_ATTEMPTS = 3
# The owner of every console job: owner_of gives only "user:" and "client:" owners, so no token's
# holder polls, downloads or cancels one over HTTP, and the servers' workers can tell them apart.
CONSOLE_OWNER = "console:puente-cli"


def now() -> datetime:
    return datetime.now(UTC)


def owner_of(principal: Principal) -> str:
    """Who a job belongs to: its status, files and cancellation need a token of the same client
    (or, for a signed-in user, the same user)."""
    return f"user:{principal.user}" if principal.user else f"client:{principal.client_id or principal.subject}"


def principal_to_json(principal: Principal) -> str:
    values = {f.name: getattr(principal, f.name) for f in fields(principal)}
    values["scopes"] = sorted(principal.scopes)
    return json.dumps(values)


def principal_from_json(text: str) -> Principal:
    values = json.loads(text)
    values["scopes"] = frozenset(values["scopes"])
    return Principal(**values)


@dataclass
class Job:
    id: str
    owner: str
    principal: Principal
    request: ExportRequest
    status: str
    progress: dict[str, Any]
    error: str | None
    attempts: int
    transaction_time: datetime | None
    created_at: datetime
    expires_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite gives naive datetimes back


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        owner=row.owner,
        principal=principal_from_json(row.principal),
        request=ExportRequest.from_json(row.request),
        status=row.status,
        progress=json.loads(row.progress),
        error=row.error,
        attempts=row.attempts,
        transaction_time=_utc(row.transaction_time),
        created_at=_utc(row.created_at) or now(),
        expires_at=_utc(row.expires_at),
    )


class JobStore:
    def __init__(self, engine: AsyncEngine, *, lease_seconds: float = 30.0) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)

    async def create(self, principal: Principal, request: ExportRequest, *, console: bool = False) -> str:
        """A queued job; `console`: the console's own (see the module's docstring)."""
        job_id = str(uuid.uuid4())
        stamp = now()
        async with self.engine.begin() as connection:
            await connection.execute(
                export_jobs.insert().values(
                    id=job_id,
                    owner=CONSOLE_OWNER if console else owner_of(principal),
                    principal=principal_to_json(principal),
                    request=request.to_json(),
                    status=QUEUED,
                    progress="{}",
                    attempts=0,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        return job_id

    async def get(self, job_id: str) -> Job | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(export_jobs).where(export_jobs.c.id == job_id))).first()
        return None if row is None else _job(row)

    async def claimable(self) -> bool:
        """Is there a job to claim? A cheap read, so idle workers never take SQLite's write lock."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(export_jobs.c.id).where(self._for_servers()).limit(1))).first()
        return row is not None

    def _for_servers(self) -> Any:
        return and_(self._claimable(), export_jobs.c.owner != CONSOLE_OWNER)

    def _claimable(self) -> Any:
        return or_(
            export_jobs.c.status == QUEUED,
            and_(export_jobs.c.status == RUNNING, export_jobs.c.lease_until < now()),
        )

    async def claim(self, worker: str) -> Job | None:
        """The oldest server job nobody holds, now leased to `worker`; None when there is none."""
        pick = (
            select(export_jobs.c.id)
            .where(self._for_servers())
            .order_by(export_jobs.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = await self._lease(export_jobs.c.id == pick, worker)
        if row is None:
            return None
        job = _job(row)
        if job.attempts > MAX_ATTEMPTS:
            await self.finish(
                job.id, worker, FAILED, error=f"the export was interrupted {MAX_ATTEMPTS} times and was given up"
            )
            return None
        return job

    async def _lease(self, which: Any, worker: str) -> Any:
        """Lease the claimable job `which` selects to `worker`, counting the attempt; its row, or None."""
        stamp = now()
        async with self.engine.begin() as connection:
            return (
                await connection.execute(
                    update(export_jobs)
                    .where(which, self._claimable())
                    .values(
                        status=RUNNING,
                        lease_owner=worker,
                        lease_until=stamp + self.lease,
                        attempts=export_jobs.c.attempts + 1,
                        updated_at=stamp,
                    )
                    .returning(*export_jobs.c)
                )
            ).first()

    async def claim_job(self, job_id: str, worker: str) -> Job | None:
        """This job, leased to `worker`, if nobody holds it (`puente export` resuming its own job)."""
        row = await self._lease(export_jobs.c.id == job_id, worker)
        return None if row is None else _job(row)

    async def checkpoint(
        self, job_id: str, worker: str, progress: dict[str, Any], *, transaction_time: datetime | None = None
    ) -> bool:
        """Record progress and renew the lease; False when the job is no longer this worker's (it was
        cancelled, or its lease ran out and another worker took it): the worker must stop."""
        values: dict[str, Any] = {
            "progress": json.dumps(progress),
            "lease_until": now() + self.lease,
            "updated_at": now(),
        }
        if transaction_time is not None:
            values["transaction_time"] = transaction_time
        return await self._update_held(job_id, worker, values)

    async def finish(
        self,
        job_id: str,
        worker: str,
        status: str,
        *,
        progress: dict[str, Any] | None = None,
        error: str | None = None,
        expires_at: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now(),
            "expires_at": expires_at or now() + timedelta(hours=1),
        }
        if progress is not None:
            values["progress"] = json.dumps(progress)
        return await self._update_held(job_id, worker, values)

    async def _update_held(self, job_id: str, worker: str, values: dict[str, Any]) -> bool:
        """Update a running job only while `worker` still holds its lease (False: it lost it)."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(export_jobs)
                .where(export_jobs.c.id == job_id, export_jobs.c.lease_owner == worker, export_jobs.c.status == RUNNING)
                .values(**values)
            )
        return bool(result.rowcount)

    async def cancel(self, job_id: str) -> None:
        """Cancelled jobs answer 404 from then on; their worker stops at its next checkpoint and the
        sweep removes their files."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(export_jobs)
                .where(export_jobs.c.id == job_id)
                .values(status=CANCELLED, lease_owner=None, lease_until=None, updated_at=now(), expires_at=now())
            )

    async def expired(self) -> list[str]:
        """Jobs whose files are due for removal: expired, or cancelled."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(export_jobs.c.id).where(
                    export_jobs.c.status.in_([COMPLETED, FAILED, CANCELLED]), export_jobs.c.expires_at < now()
                )
            )
            return [row.id for row in rows]

    async def remove(self, job_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(export_jobs).where(export_jobs.c.id == job_id))
