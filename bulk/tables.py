"""Tables of bulk work: export jobs (shared by every `serve` process) and import progress."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

from storage.tables import naming_convention

metadata = MetaData(naming_convention=naming_convention)
Timestamp = DateTime(timezone=True)

# One row per $export kick-off. A worker claims a job by setting `lease_owner` / `lease_until` and
# renews the lease at every checkpoint; a job whose lease ran out (its worker died) is claimed again
# and resumes from `progress` (per type: the last pk written and the bytes of its file so far).
export_jobs = Table(
    "bulk_export_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(256), nullable=False),  # who may poll, download and cancel (bulk.jobs.owner_of)
    Column("principal", Text, nullable=False),  # the caller, as JSON: the job reads with its access rules
    Column("request", Text, nullable=False),  # bulk.request.ExportRequest as JSON
    Column("status", String(16), nullable=False),  # queued | running | completed | failed | cancelled
    Column("progress", Text, nullable=False, default="{}"),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Timestamp, nullable=True),
    Column("transaction_time", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=True),
    Index("ix_bulk_export_jobs_status", "status", "lease_until"),
)

# `puente import`: how many lines of each source are stored, written in the transaction that stores
# them, so an interrupted import resumes exactly after what was committed.
import_progress = Table(
    "bulk_import_progress",
    metadata,
    Column("source", String(128), primary_key=True),  # a digest of the file's path, size and mtime
    Column("path", Text, nullable=False),
    Column("lines_done", Integer, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)
