"""`puente import`: NDJSON files, transaction/batch Bundles and folders of them, into the repository.

Everything goes through the FhirRepository, as an API write does (validation, access rules, search
index, history, write hooks). NDJSON is taken in batches of `batch_size` lines, one database
transaction each, and each batch records in that same transaction how far its file is done
(bulk_import_progress): an import interrupted at any point (Ctrl-C, kill -9, a power cut) is run
again with the same command and goes on after the last committed batch, storing nothing twice and
nothing half. A line that cannot be stored (not JSON, invalid, refused) is left out, and an
OperationOutcome naming its file and line goes to the error file; the rest of its batch is stored.
A transaction Bundle is stored whole or not at all; a batch Bundle entry by entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bulk.tables import import_progress
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError, Invalid, Issue, operation_outcome
from fhir_mappings.validation import validate_resource
from storage.database import transaction
from storage.repository import FhirRepository

SOURCE_EXTENSION = "https://puente.example.org/fhir/StructureDefinition/import-source"
SUFFIXES = (".ndjson", ".json")

RepositoryFactory = Callable[[AsyncConnection], FhirRepository]
# Stores a batch or transaction Bundle through the repository; answers the response Bundle.
BundleWriter = Callable[[FhirRepository, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class ImportCounts:
    stored: int = 0
    refused: int = 0
    skipped: int = 0  # lines an earlier, interrupted run already stored
    files: int = 0


@dataclass
class ErrorFile:
    """NDJSON of OperationOutcomes, one per refused line or entry, naming its file and line."""

    path: Path
    _out: IO[bytes] | None = field(default=None, repr=False)

    def write(self, source: Path, line: int, error: FhirError | str) -> None:
        issues = error.issues if isinstance(error, FhirError) else [Issue(str(error), "invalid")]
        outcome = operation_outcome(issues)
        outcome["extension"] = [{"url": SOURCE_EXTENSION, "valueString": f"{source}:{line}"}]
        if self._out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.path.open("ab")
        self._out.write(fhir_json.dumps(outcome) + b"\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def sources(path: Path) -> list[Path]:
    """The files to import: `path` itself, or the .ndjson/.json files under it, in name order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))


def source_key(path: Path) -> str:
    """The same file (path, size, modification time) resumes; an edited one starts afresh."""
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


class Importer:
    def __init__(
        self,
        engine: AsyncEngine,
        repository: RepositoryFactory,
        errors: ErrorFile,
        *,
        write_bundle: BundleWriter,
        batch_size: int = 500,
        on_progress: Callable[[int], None] = lambda _lines: None,
    ) -> None:
        self.engine = engine
        self.repository = repository
        self.errors = errors
        self.write_bundle = write_bundle
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.counts = ImportCounts()

    async def import_file(self, path: Path) -> None:
        key = source_key(path)
        done = await self._lines_done(key)
        self.counts.files += 1
        if path.name.endswith(".ndjson"):
            await self._ndjson(path, key, done)
        else:
            await self._json(path, key, done)

    async def _lines_done(self, key: str) -> int:
        async with self.engine.connect() as connection:
            value = (
                await connection.execute(select(import_progress.c.lines_done).where(import_progress.c.source == key))
            ).scalar()
        return int(value or 0)

    async def _ndjson(self, path: Path, key: str, done: int) -> None:
        self.counts.skipped += done
        self.on_progress(done)
        async for batch in _batches(path, done, self.batch_size):
            await self._store_lines(path, key, batch)
            self.on_progress(len(batch))

    async def _store_lines(self, path: Path, key: str, batch: list[tuple[int, bytes]]) -> None:
        ready: list[tuple[int, dict[str, Any]]] = []
        for number, text in batch:
            resource = self._parsed(path, number, text)
            if resource is not None:
                ready.append((number, resource))
        async with transaction(self.engine, write=True) as connection:
            repository = self.repository(connection)
            stored = await self._write_together(repository, ready) if ready else 0
            if stored < 0:  # one of them failed: store each on its own, to name the culprit
                stored = 0
                for number, resource in ready:
                    try:
                        async with repository.savepoint():
                            await _write(repository, resource)
                        stored += 1
                    except FhirError as exc:
                        self._refuse(path, number, exc)
            await _record(connection, key, path, batch[-1][0])
        self.counts.stored += stored

    def _parsed(self, path: Path, number: int, text: bytes) -> dict[str, Any] | None:
        if not text.strip():
            return None
        try:
            resource = fhir_json.loads(text)
            validate_resource(resource)
        except FhirError as exc:
            self._refuse(path, number, exc)
            return None
        except ValueError as exc:
            self._refuse(path, number, Invalid(f"not a JSON resource: {exc}"))
            return None
        return dict(resource)

    def _refuse(self, path: Path, number: int, error: FhirError) -> None:
        self.counts.refused += 1
        self.errors.write(path, number, error)

    async def _write_together(self, repository: FhirRepository, ready: list[tuple[int, dict[str, Any]]]) -> int:
        """The batch's new resources in one statement (PostgreSQL), the rest as updates; -1 if any failed."""
        try:
            async with repository.savepoint():
                with_ids = [(r, r["id"]) for _, r in ready if isinstance(r.get("id"), str)]
                taken = await repository.create_unless_taken(with_ids, validated=True)
                for (resource, _), written in zip(with_ids, taken, strict=True):
                    if written is None:
                        await repository.update(resource["resourceType"], resource["id"], resource)
                for _, resource in ready:
                    if not isinstance(resource.get("id"), str):
                        await repository.create(resource, validated=True)
        except FhirError:
            return -1
        return len(ready)

    async def _json(self, path: Path, key: str, done: int) -> None:
        """A JSON file: a transaction or batch Bundle, another Bundle's resources, or one resource."""
        try:
            document = fhir_json.loads(_read(path))
        except (FhirError, ValueError) as exc:
            self._refuse(path, 1, exc if isinstance(exc, FhirError) else Invalid(f"not JSON: {exc}"))
            await self._mark_done(path, key)
            return
        kind = document.get("type") if isinstance(document, dict) and document.get("resourceType") == "Bundle" else None
        if kind in ("transaction", "batch"):
            if done:
                self.counts.skipped += 1
            else:
                await self._bundle(path, key, document)
        else:
            entries = document.get("entry", []) if kind is not None else [{"resource": document}]
            lines = [
                (i + 1, fhir_json.dumps(e.get("resource") if isinstance(e, dict) else e))
                for i, e in enumerate(entries)
                if i + 1 > done
            ]
            self.counts.skipped += done
            for start in range(0, len(lines), self.batch_size):
                await self._store_lines(path, key, lines[start : start + self.batch_size])
            if not lines and not done:
                await self._mark_done(path, key)
        self.on_progress(1)

    async def _bundle(self, path: Path, key: str, bundle: dict[str, Any]) -> None:
        try:
            async with transaction(self.engine, write=True) as connection:
                response = await self.write_bundle(self.repository(connection), bundle)
                await _record(connection, key, path, 1)
        except FhirError as exc:  # a transaction that failed stored nothing
            self._refuse(path, 1, exc)
            await self._mark_done(path, key)
            return
        for index, entry in enumerate(response.get("entry", [])):
            status = str(entry.get("response", {}).get("status", ""))
            if status[:1] in ("2", "3"):
                self.counts.stored += 1
            else:
                self.counts.refused += 1
                outcome = entry.get("response", {}).get("outcome") or {}
                diagnostics = "; ".join(i.get("diagnostics", "") for i in outcome.get("issue", []))
                self.errors.write(path, 1, Invalid(f"Bundle.entry[{index}] ({status}): {diagnostics}"))

    async def _mark_done(self, path: Path, key: str) -> None:
        async with transaction(self.engine, write=True) as connection:
            await _record(connection, key, path, 1)


async def _write(repository: FhirRepository, resource: dict[str, Any]) -> None:
    if isinstance(resource.get("id"), str):
        await repository.update(resource["resourceType"], resource["id"], resource)
    else:
        await repository.create(resource, validated=True)


async def _record(connection: AsyncConnection, key: str, path: Path, lines_done: int) -> None:
    values = {"path": str(path), "lines_done": lines_done, "updated_at": datetime.now(UTC)}
    updated = await connection.execute(import_progress.update().where(import_progress.c.source == key).values(**values))
    if not updated.rowcount:
        await connection.execute(import_progress.insert().values(source=key, **values))


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def _batches(path: Path, skip: int, size: int) -> AsyncIterator[list[tuple[int, bytes]]]:
    """(line number, text) in batches, after the first `skip` lines; one batch in memory at a time."""
    batch: list[tuple[int, bytes]] = []
    for number, text in _lines(path):
        if number <= skip:
            continue
        batch.append((number, text))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)
